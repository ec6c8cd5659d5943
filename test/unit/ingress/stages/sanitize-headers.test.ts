// Request-line override headers: stripped unless the route allows one by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUEST_LINE_OVERRIDE_HEADERS } from '../../../../gateway/config/schema.js';
import { createHeaderSanitizer } from '../../../../gateway/ingress/stages/sanitize-headers.js';

const sanitizer = createHeaderSanitizer([]);
const overrides = Object.fromEntries(REQUEST_LINE_OVERRIDE_HEADERS.map((name) => [name, '/admin']));

test('every override header is stripped by default', () => {
  const out = sanitizer.sanitize({ ...overrides, accept: '*/*' });
  assert.deepEqual(out, { accept: '*/*' });
});

test('a route lets through only the override headers it names', () => {
  const out = sanitizer.sanitize({ ...overrides, accept: '*/*' }, new Set(['x-http-method-override']));
  assert.deepEqual(out, { accept: '*/*', 'x-http-method-override': '/admin' });
});

test('the underscore spelling never passes, allowed or not', () => {
  const out = sanitizer.sanitize({ x_original_url: '/admin' }, new Set(['x-original-url']));
  assert.deepEqual(out, {});
});
