// The upstreams every peer forwards to, on the load generator's core: plain HTTP (S1, S2), HTTPS that
// demands a client certificate from the mesh CA (S3), and the HTTPS destination of the egress tunnels
// (S4). nginx when installed (it costs the least CPU, so the proxy stays the bottleneck), else Node.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Material } from './material.js';
import { LOAD_CORE, freePort, hasCommand, pinned, start, waitForPort, type Started } from './proc.js';

export interface Upstreams {
  kind: 'nginx' | 'node';
  httpPort: number;
  mtlsPort: number;
  egressPort: number;
  /** S1-3ep: three plain HTTP ports answering alike (httpPort first), one upstream of three endpoints. */
  endpointPorts: readonly number[];
  stop(): Promise<void>;
}

type Ports = { httpPort: number; mtlsPort: number; egressPort: number; extraPorts: number[] };

const BODY = 'ok\n';

export async function startUpstreams(material: Material): Promise<Upstreams> {
  const ports: Ports = { httpPort: await freePort(), mtlsPort: await freePort(), egressPort: await freePort(), extraPorts: [await freePort(), await freePort()] };
  const { extraPorts, ...main } = ports;
  const endpointPorts = [ports.httpPort, ...extraPorts];
  if (hasCommand('nginx')) {
    const proc = startNginxUpstream(material, ports);
    for (const port of [...Object.values(main), ...extraPorts]) await waitForPort(port, proc);
    return { kind: 'nginx', ...main, endpointPorts, stop: proc.stop };
  }
  return { kind: 'node', ...main, endpointPorts, stop: await startNodeUpstreams(material, ports) };
}

function startNginxUpstream(material: Material, ports: Ports): Started {
  const prefix = path.join(material.dir, 'nginx-upstream');
  fs.mkdirSync(prefix, { recursive: true });
  const conf = material.write(
    'nginx-upstream.conf',
    `${nginxPreamble(prefix)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  ssl_protocols TLSv1.3;
  server {
    listen 127.0.0.1:${ports.httpPort};
${ports.extraPorts.map((p) => `    listen 127.0.0.1:${p};`).join('\n')}
    location / { return 200 "${BODY.trim()}\\n"; }
  }
  server {
    listen 127.0.0.1:${ports.mtlsPort} ssl;
    ssl_certificate ${material.upstream.cert};
    ssl_certificate_key ${material.upstream.key};
    ssl_client_certificate ${material.ca};
    ssl_verify_client on;
    location / { return 200 "${BODY.trim()}\\n"; }
  }
  server {
    listen 127.0.0.1:${ports.egressPort} ssl;
    ssl_certificate ${material.egressTarget.cert};
    ssl_certificate_key ${material.egressTarget.key};
    location / { return 200 "${BODY.trim()}\\n"; }
  }
}
`,
  );
  return start('nginx upstream', pinned(LOAD_CORE, ['nginx', '-p', prefix, '-c', conf]));
}

/** The part of an nginx config every instance shares: one worker, foreground, files under `prefix`. */
export function nginxPreamble(prefix: string): string {
  return `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }`;
}

async function startNodeUpstreams(material: Material, ports: Ports): Promise<() => Promise<void>> {
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  };
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  const servers = [
    http.createServer({ keepAliveTimeout: 300_000 }, answer),
    https.createServer(
      { cert: read(material.upstream.cert), key: read(material.upstream.key), ca: material.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', keepAliveTimeout: 300_000 },
      answer,
    ),
    https.createServer({ cert: read(material.egressTarget.cert), key: read(material.egressTarget.key), minVersion: 'TLSv1.3', keepAliveTimeout: 300_000 }, answer),
    ...ports.extraPorts.map(() => http.createServer({ keepAliveTimeout: 300_000 }, answer)),
  ];
  const list = [ports.httpPort, ports.mtlsPort, ports.egressPort, ...ports.extraPorts];
  await Promise.all(servers.map((s, i) => new Promise<void>((resolve) => s.listen(list[i], '127.0.0.1', resolve))));
  return async () => {
    await Promise.all(
      servers.map((s) => {
        s.closeAllConnections();
        return new Promise<void>((resolve) => s.close(() => resolve()));
      }),
    );
  };
}
