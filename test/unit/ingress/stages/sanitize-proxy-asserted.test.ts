// Client copies of the headers a trusted proxy sets (identity, client certificate, original host) never pass;
// look-alike names that no proxy asserts do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHeaderSanitizer } from '../../../../gateway/ingress/stages/sanitize-headers.js';

const sanitizer = createHeaderSanitizer([]);

const STRIPPED = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-forwarded-scheme',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-forwarded-tls-client-cert',
  'x-original-host',
  'x-host',
  'x-envoy-original-path',
  'x-envoy-internal',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-access-token',
  'remote-user',
  'x-remote-user',
  'x-remote-group',
  'x-remote-extra-scopes',
  'x-webauth-user',
  'ssl-client-cert',
  'ssl-client-verify',
  'x-ssl-client-cert',
  'x-ssl-client-s-dn',
  'x-client-cert',
  'x-client-cert-chain',
  'x-client-certificate',
  'x-client-verify',
  'x-arr-clientcert',
  'x-amzn-mtls-clientcert',
  'x-amzn-mtls-clientcert-subject',
];

// Near misses: a prefix without its dash, a longer word, the same word elsewhere in the name.
const KEPT = ['x-custom', 'x-forwardedfor', 'x-envoyage', 'x-hosts', 'x-client-id', 'x-remote-addr-hint', 'remote-user-agent', 'ssl-client', 'my-x-forwarded-user', 'user-agent'];

test('every proxy-asserted header is stripped, whatever the route allows', () => {
  const headers = Object.fromEntries(STRIPPED.map((name) => [name, 'forged']));
  assert.deepEqual(sanitizer.sanitize(headers), {});
  assert.deepEqual(sanitizer.sanitize(headers, new Set(['x-forwarded-uri', 'x-forwarded-prefix'])), {});
});

test('look-alike names pass', () => {
  const headers = Object.fromEntries(KEPT.map((name) => [name, 'ok']));
  assert.deepEqual(sanitizer.sanitize(headers), headers);
});

test('the x-forwarded-* request-line overrides still pass where a route allows them by name (GHSA-7x63-xv5r-3p2x)', () => {
  const headers = { 'x-forwarded-uri': '/a', 'x-forwarded-path': '/b', 'x-forwarded-prefix': '/c', 'x-forwarded-user': 'root' };
  assert.deepEqual(sanitizer.sanitize(headers), {});
  assert.deepEqual(sanitizer.sanitize(headers, new Set(['x-forwarded-prefix'])), { 'x-forwarded-prefix': '/c' });
});
