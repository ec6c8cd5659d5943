import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redactConfig } from '../../../gateway/admin/redact.js';

const cases: { name: string; input: unknown; expected: unknown }[] = [
  { name: 'password in a Redis URL', input: { url: 'redis://:pw@h:6379' }, expected: { url: `redis://${REDACTED}@h:6379` } },
  { name: 'user and password in a rediss URL', input: { url: 'rediss://u:pw@h/1' }, expected: { url: `rediss://${REDACTED}@h/1` } },
  { name: 'URL without credentials', input: { url: 'https://idp.example/jwks?x=a@b' }, expected: { url: 'https://idp.example/jwks?x=a@b' } },
  { name: 'token-like fields', input: { token: 't', clientSecret: 's', password: 'p', apiKey: 'k' }, expected: { token: REDACTED, clientSecret: REDACTED, password: REDACTED, apiKey: REDACTED } },
  { name: 'file paths stay', input: { tokenFile: '/run/token', key: '/certs/k.pem' }, expected: { tokenFile: '/run/token', key: '/certs/k.pem' } },
  { name: 'symmetric JWK', input: [{ kty: 'oct', k: 'secret', alg: 'HS256' }], expected: [{ kty: 'oct', k: REDACTED, alg: 'HS256' }] },
  { name: 'OKP private JWK', input: { kty: 'OKP', crv: 'Ed25519', x: 'pub', d: 'priv' }, expected: { kty: 'OKP', crv: 'Ed25519', x: 'pub', d: REDACTED } },
  { name: 'unparsable JWKS text', input: { jwks: '{"keys": [{"d": "priv"' }, expected: { jwks: REDACTED } },
  { name: 'scalars', input: { n: 1, b: true, z: null }, expected: { n: 1, b: true, z: null } },
];

for (const c of cases) {
  test(`redactConfig: ${c.name}`, () => {
    const before = JSON.stringify(c.input);
    assert.deepEqual(redactConfig(c.input), c.expected);
    assert.equal(JSON.stringify(c.input), before, 'the running config is not modified');
  });
}
