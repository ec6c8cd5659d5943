// Over a real HTTP server: Node discards a repeated Authorization header unless the server joins duplicates,
// so the gateway's server must use `joinDuplicateHeaders: true` for the stage to see (and refuse) both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { toHttpResponse } from '../../../gateway/core/errors.js';
import { createJwtAuthn, type JwtAuthn } from '../../../gateway/jwt/verifier.js';
import { makeKey, memoryLog, sign, startJwksServer, type JwksServer, type TestKey } from './helpers.js';

const ISS = 'https://idp.example';
let jwks: JwksServer;
let authn: JwtAuthn;
let server: Server;
let port: number;
let key: TestKey;

before(async () => {
  key = await makeKey('ES256', 'k1');
  jwks = await startJwksServer([key.publicJwk]);
  authn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: jwks.url }], {}, { logger: memoryLog().logger });
  await authn.ready();
  server = createServer({ joinDuplicateHeaders: true }, (req, res) => {
    authn.authenticate({ headers: req.headers, query: '' }).then(
      (r) => res.writeHead(200).end(r.auth?.principal ?? 'anonymous'),
      (err: unknown) => {
        const out = toHttpResponse(err, 'req-1');
        res.writeHead(out.status, out.headers).end(out.body);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  authn.close();
  await jwks.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function raw(headerLines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end(['GET / HTTP/1.1', 'Host: x', 'Connection: close', ...headerLines, '', ''].join('\r\n'));
    });
    let data = '';
    socket.setEncoding('utf8').on('data', (d: string) => (data += d)).on('end', () => resolve(data)).on('error', reject);
  });
}

test('two Authorization headers are refused with GW_AUTHN_MULTIPLE_TOKENS', async () => {
  const t1 = await sign(key, { iss: ISS });
  const res = await raw([`Authorization: Bearer ${t1}`, `Authorization: Bearer ${t1}`]);
  assert.match(res, /^HTTP\/1\.1 401 /);
  assert.match(res, /x-portcullis-code: GW_AUTHN_MULTIPLE_TOKENS/i);
  assert.match(res, /www-authenticate: Bearer realm="portcullis", error="invalid_request"/i);
});

test('one Authorization header without the Bearer prefix is a 401 invalid_token', async () => {
  const res = await raw(['Authorization: Token abc']);
  assert.match(res, /^HTTP\/1\.1 401 /);
  assert.match(res, /error="invalid_token", error_description="token header without the expected prefix"/);
});
