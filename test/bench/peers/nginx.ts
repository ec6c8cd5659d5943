// nginx: one worker, the same certificate and upstreams. Open-source nginx has no JWT verification, so its
// S3 cell is TLS + mTLS re-origination only and is labelled so.
import fs from 'node:fs';
import path from 'node:path';
import { SERVER_NAME } from '../material.js';
import { PROXY_CPUS, freePort, hasCommand, pinned, start, waitForPort } from '../proc.js';
import type { PeerDriver } from '../scenarios.js';
import { nginxPreamble } from '../upstream.js';

export const nginx: PeerDriver = {
  name: 'nginx',
  packages: ['nginx'],
  missing: () => (hasCommand('nginx') ? [] : ['nginx']),
  scenarios: ['S1', 'HS', 'S3', 'S1-h2', 'S3-h2', 'S1-3ep'],
  caveats: { S3: 'no JWT', 'S3-h2': 'no JWT' },
  async start({ material, upstreams, accessLog }) {
    const port = await freePort();
    // HTTP/2 on a second listen of the same server block; the first stays HTTP/1.1 as before.
    const h2Port = await freePort();
    const prefix = path.join(material.dir, 'nginx-peer');
    fs.mkdirSync(prefix, { recursive: true });
    const conf = material.write(
      'nginx-peer.conf',
      `${nginxPreamble(prefix)}
http {
  ${accessLog ? 'access_log /dev/null combined;' : 'access_log off;'}
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream plain { server 127.0.0.1:${upstreams.httpPort}; keepalive 64; }
  upstream mtls { server 127.0.0.1:${upstreams.mtlsPort}; keepalive 64; }
  upstream plain3 {
    least_conn;
${upstreams.endpointPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    listen 127.0.0.1:${h2Port} ssl http2;
    server_name ${SERVER_NAME};
    ssl_protocols TLSv1.3;
    ssl_certificate ${material.listener.cert};
    ssl_certificate_key ${material.listener.key};
    ssl_session_tickets on;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location = /s1 { proxy_pass http://plain; }
    location = /s1-3ep { proxy_pass http://plain3; }
    location = /s3 {
      proxy_pass https://mtls;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${material.svid.cert};
      proxy_ssl_certificate_key ${material.svid.key};
      proxy_ssl_trusted_certificate ${material.ca};
      proxy_ssl_verify on;
      proxy_ssl_name ${SERVER_NAME};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
`,
    );
    const proc = start('nginx', pinned(PROXY_CPUS, ['nginx', '-p', prefix, '-c', conf]));
    await waitForPort(port, proc);
    return { pid: proc.child.pid!, ingressPort: port, h2Port, stop: proc.stop };
  },
};
