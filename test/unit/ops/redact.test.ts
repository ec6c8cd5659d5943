import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redactConfig } from '../../../gateway/admin/redact.js';
import { redactUrls } from '../../../gateway/core/secrets.js';

const CREDENTIAL_HEADERS = ['Authorization', 'proxy-authorization', 'Cookie', 'set-cookie', 'X-Api-Key', 'x-apikey', 'x-auth-token', 'x-client-secret'];

const cases: { name: string; input: unknown; expected: unknown }[] = [
  { name: 'password in a Redis URL', input: { url: 'redis://:pw@h:6379' }, expected: { url: `redis://${REDACTED}@h:6379` } },
  { name: 'user and password in a rediss URL', input: { url: 'rediss://u:pw@h/1' }, expected: { url: `rediss://${REDACTED}@h/1` } },
  { name: 'query values of a URL', input: { url: 'https://idp.example/jwks?x=a@b&flag' }, expected: { url: `https://idp.example/jwks?x=${REDACTED}&flag` } },
  { name: 'URL without credentials or query', input: { url: 'https://idp.example/jwks' }, expected: { url: 'https://idp.example/jwks' } },
  { name: 'token-like fields', input: { token: 't', clientSecret: 's', password: 'p', apiKey: 'k' }, expected: { token: REDACTED, clientSecret: REDACTED, password: REDACTED, apiKey: REDACTED } },
  { name: 'file paths stay', input: { tokenFile: '/run/token', key: '/certs/k.pem' }, expected: { tokenFile: '/run/token', key: '/certs/k.pem' } },
  { name: 'symmetric JWK', input: [{ kty: 'oct', k: 'secret', alg: 'HS256' }], expected: [{ kty: 'oct', k: REDACTED, alg: 'HS256' }] },
  { name: 'OKP private JWK', input: { kty: 'OKP', crv: 'Ed25519', x: 'pub', d: 'priv' }, expected: { kty: 'OKP', crv: 'Ed25519', x: 'pub', d: REDACTED } },
  { name: 'unparsable JWKS text', input: { jwks: '{"keys": [{"d": "priv"' }, expected: { jwks: REDACTED } },
  { name: 'scalars', input: { n: 1, b: true, z: null }, expected: { n: 1, b: true, z: null } },
  {
    name: 'header values whose name carries a credential (route header modifiers and matches)',
    input: { set: [...CREDENTIAL_HEADERS, 'x-tenant'].map((name) => ({ name, value: 'v' })) },
    expected: { set: [...CREDENTIAL_HEADERS.map((name) => ({ name, value: REDACTED })), { name: 'x-tenant', value: 'v' }] },
  },
  { name: 'every tracing export header, whatever its name', input: { tracing: { enabled: true, headers: { 'x-honeycomb-team': 'k1', authorization: 'Basic x' } } }, expected: { tracing: { enabled: true, headers: { 'x-honeycomb-team': REDACTED, authorization: REDACTED } } } },
];

for (const c of cases) {
  test(`redactConfig: ${c.name}`, () => {
    const before = JSON.stringify(c.input);
    assert.deepEqual(redactConfig(c.input), c.expected);
    assert.equal(JSON.stringify(c.input), before, 'the running config is not modified');
  });
}

test('redactUrls: URLs inside any text (error messages, issue messages)', () => {
  const cases: [string, string][] = [
    ['Request cannot be constructed from a URL that includes credentials: http://u:pw@h:1/jwks?k=s', `Request cannot be constructed from a URL that includes credentials: http://${REDACTED}@h:1/jwks?k=${REDACTED}`],
    ['"redis://:pw@h:6379/0" does not match ^rediss?://', `"redis://${REDACTED}@h:6379/0" does not match ^rediss?://`],
    ['two: https://a/x?t=1 and ws://u@b/', `two: https://a/x?t=${REDACTED} and ws://${REDACTED}@b/`],
    ['no URL here: user@host?x=1', 'no URL here: user@host?x=1'],
  ];
  for (const [text, expected] of cases) assert.equal(redactUrls(text), expected);
});
