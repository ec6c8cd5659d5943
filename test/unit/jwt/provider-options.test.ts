// Options are checked when the stage is created, never per request.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import type { JwtProviderConfig } from '../../../gateway/config/schema.js';
import { createLogger } from '../../../gateway/core/log.js';
import { createJwtAuthn } from '../../../gateway/jwt/verifier.js';

const logger = createLogger('silent');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const make = (p: Partial<JwtProviderConfig>, options = {}) =>
  createJwtAuthn([{ name: 'idp', issuer: 'https://idp', ...p }], options, { logger });

test('exactly one of jwksUri, jwks, jwksFile', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const jwks = { keys: [await exportJWK(publicKey)] };
  assert.throws(() => make({}), /jwtProviders\.idp: needs exactly one of jwksUri, jwks, jwksFile \(none set\)/);
  assert.throws(() => make({ jwks, jwksUri: 'https://idp/jwks' }), /exactly one .* \(found jwksUri, jwks\)/);
  assert.throws(() => make({ jwksUri: 'file:///etc/passwd' }), /must be an http\(s\) URL/);
});

test('inline and file JWKS are parsed and checked at creation, and serve as static keys', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid: 'k' };
  const inline = make({ jwks: JSON.stringify({ keys: [pub] }) });
  await inline.ready();
  assert.deepEqual(inline.status(), { idp: { state: 'fresh', keys: 1 } });

  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [pub] }));
  assert.deepEqual(make({ jwksFile: file }).status().idp, { state: 'fresh', keys: 1 });

  assert.throws(() => make({ jwks: '{not json' }), /jwtProviders\.idp: jwks: not valid JSON/);
  assert.throws(() => make({ jwks: { keys: [] } }), /has no keys/);
  assert.throws(() => make({ jwks: '{"keys": 1}' }), /not a JWKS/);
  const priv = { ...(await exportJWK(privateKey)), kid: 'k' };
  assert.throws(() => make({ jwks: { keys: [priv] } }), /private key material/);
  assert.throws(() => make({ jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] } }), /jwks/);
  assert.throws(() => make({ jwksFile: join(dir, 'missing.json') }), /ENOENT/);
  // A set with keys, none of which can verify the provider's algorithms, would refuse every token.
  assert.throws(() => make({ jwks: { keys: [pub] }, algorithms: ['RS256', 'ES384'] }), /no key can verify RS256, ES384/);
  assert.throws(() => make({ jwks: { keys: [{ ...pub, alg: 'ES256' }] }, algorithms: ['PS256'] }), /no key can verify/);
});

// Unique provider names are the config loader's check (test/unit/config/load.test.ts, duplicate-names.yaml).
test('the cache size is a non-negative integer', async () => {
  const { publicKey } = await generateKeyPair('ES256');
  const jwks = { keys: [await exportJWK(publicKey)] };
  assert.throws(() => make({ jwks }, { tokenCacheSize: -1 }), /tokenCacheSize/);
  assert.doesNotThrow(() => make({ jwks }, { tokenCacheSize: 0 }));
});
