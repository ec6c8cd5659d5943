// HAProxy, the reference of issue #6: one thread, the same certificate, the same checks. jwt_verify checks
// the signature only ("does not perform a full JWT validation", doc/configuration.txt), so alg, exp, iss and
// aud are checked by ACLs here, and the alg is pinned per route so a token cannot choose it (alg confusion,
// CVE-2015-9235).
import path from 'node:path';
import { AUDIENCE, ISSUER, SERVER_NAME, type Alg, type Material } from '../material.js';
import { PROXY_CPUS, freePort, hasCommand, pinned, start, waitForPort } from '../proc.js';
import type { PeerDriver } from '../scenarios.js';

function jwtRules(material: Material, alg: Alg, when: string): string {
  const deny = `http-request deny status 401 if ${when}`;
  return [
    `${deny} !{ var(txn.bearer) -m found }`,
    `${deny} !{ var(txn.bearer),jwt_header_query('$.alg') -m str ${alg} }`,
    `${deny} !{ var(txn.bearer),jwt_verify(${alg},"${material.jwt[alg].publicPem}") -m int 1 }`,
    `${deny} !{ var(txn.bearer),jwt_payload_query('$.iss') -m str ${ISSUER} }`,
    `${deny} !{ var(txn.bearer),jwt_payload_query('$.aud') -m str ${AUDIENCE} }`,
    `${deny} !{ var(txn.bearer),jwt_payload_query('$.exp','int'),sub(txn.now) -m int gt 0 }`,
  ]
    .map((line) => `  ${line}`)
    .join('\n');
}

export const haproxy: PeerDriver = {
  name: 'haproxy',
  packages: ['haproxy'],
  missing: () => (hasCommand('haproxy') ? [] : ['haproxy']),
  scenarios: ['S1', 'HS', 'S2-ES256', 'S2-RS256', 'S3', 'S3-nocache', 'S1-h2', 'S3-h2', 'S1-3ep'],
  async start({ material, upstreams, accessLog }) {
    const port = await freePort();
    // HTTP/2 on a second bind of the same frontend (same rules); the first stays HTTP/1.1 as before.
    const h2Port = await freePort();
    const config = `global
  nbthread 1
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
${accessLog ? '  log stdout format raw local0' : ''}

defaults
  mode http
  ${accessLog ? 'log global\n  option httplog' : 'no log'}
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend edge
  bind 127.0.0.1:${port} ssl crt ${material.listener.combined} alpn http/1.1
  bind 127.0.0.1:${h2Port} ssl crt ${material.listener.combined} alpn h2,http/1.1
  http-request deny status 421 unless { ssl_fc_sni -i ${SERVER_NAME} }
  acl jwt_es path /s2 /s3
  acl jwt_rs path /s2rs
  http-request set-var(txn.bearer) http_auth_bearer if jwt_es || jwt_rs
  http-request set-var(txn.now) date() if jwt_es || jwt_rs
${jwtRules(material, 'ES256', 'jwt_es')}
${jwtRules(material, 'RS256', 'jwt_rs')}
  use_backend mtls if { path /s3 }
  use_backend plain3 if { path /s1-3ep }
  default_backend plain

backend plain
  server up 127.0.0.1:${upstreams.httpPort}

backend plain3
  balance leastconn
${upstreams.endpointPorts.map((p, i) => `  server up${i} 127.0.0.1:${p}`).join('\n')}

backend mtls
  server up 127.0.0.1:${upstreams.mtlsPort} ssl crt ${material.svid.combined} ca-file ${material.ca} verify required verifyhost ${SERVER_NAME} sni str(${SERVER_NAME}) alpn http/1.1
`;
    const file = material.write('haproxy.cfg', config);
    const proc = start('haproxy', pinned(PROXY_CPUS, ['haproxy', '-db', '-f', file]), {
      cwd: path.dirname(file),
      stdoutFile: '/dev/null',
    });
    await waitForPort(port, proc);
    return { pid: proc.child.pid!, ingressPort: port, h2Port, stop: proc.stop };
  },
};
