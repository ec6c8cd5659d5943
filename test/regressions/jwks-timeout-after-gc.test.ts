// jwksTimeoutMs must hold after a garbage collection. On Node 20, `AbortSignal.any([..., AbortSignal.timeout(ms)])`
// lets a GC reclaim the timeout signal and its timer, so a hung issuer held unknown-`kid` requests for 40 s instead
// of 5 s. Here the issuer answers its first fetch and then accepts connections without ever answering; a token
// with an unknown `kid` forces a refetch, and collections are forced while it hangs.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, before, test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { AUDIENCE, ISSUER, request, startTestIngress, type TestIngress } from '../helpers/ingress.js';

const TIMEOUT_MS = 400;

/** `global.gc` under --expose-gc; otherwise the flag is switched on at run time and gc taken from a fresh context. */
function collector(): () => void {
  if (typeof globalThis.gc === 'function') return globalThis.gc;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

let ing: TestIngress;
let issuer: http.Server;
let fetches = 0;
const signer = generateKeyPair('ES256', { extractable: true });

before(async () => {
  const published = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(published.publicKey)), kid: 'published', alg: 'ES256', use: 'sig' };
  // First fetch answered; every later one is accepted and left hanging (no headers, no close).
  issuer = http.createServer((_req, res) => {
    if (++fetches === 1) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/jwks.json`;
  ing = await startTestIngress((config) => {
    Object.assign(config.jwtProviders[0], { jwksUri: url, jwksTimeoutMs: TIMEOUT_MS, jwksCooldownSeconds: 0 });
  });
});
after(async () => {
  await ing.close();
  issuer.closeAllConnections();
  await new Promise((resolve) => issuer.close(resolve));
});

test('an unknown-kid request is answered within jwksTimeoutMs of a hung refetch, after forced GCs', { timeout: 20_000 }, async () => {
  const gc = collector();
  const { privateKey } = await signer;
  for (let round = 0; round < 3; round++) {
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES256', kid: `rotated-${round}` })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(privateKey);
    const before = fetches;
    const started = performance.now();
    const reply = request(ing.port, ing.caPem, { path: '/api/x', headers: { authorization: `Bearer ${token}` } });
    // Collect while the refetch is in flight: with the old signal, this is what lost the timer.
    for (let i = 0; i < 5; i++) {
      await sleep(20);
      gc();
    }
    const { status, json } = await reply;
    const elapsed = performance.now() - started;
    assert.equal(status, 401);
    assert.equal(json().reason, 'kid_unknown');
    assert.equal(fetches, before + 1, 'the unknown kid triggered one refetch, which hung');
    assert.ok(elapsed >= TIMEOUT_MS - 20 && elapsed < TIMEOUT_MS + 1_000, `answered after ${Math.round(elapsed)} ms`);
  }
});
