// The admin, redis and rateLimits sections through the real config loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError, loadConfigText, type ConfigIssue } from '../../../gateway/config/load.js';
import { configFixtures } from '../../helpers/config-material.js';

const FIXTURES = configFixtures();
const FILE = join(FIXTURES, 'operations.yaml');

const base = (extra: string) => `version: v1
listeners: []
upstreams:
  - { name: app, url: 'http://127.0.0.1:8080' }
routes:
  - { name: api, match: { path: { prefix: / } }, upstream: app, rateLimit: per-client }
${extra}`;

function issuesOf(text: string): ConfigIssue[] {
  try {
    loadConfigText(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

test('a complete operations config loads; admin file paths become absolute', () => {
  const { config } = loadConfigText(
    base(`admin:
  address: 0.0.0.0
  port: 9901
  tokenFile: files/admin-token.txt
  tls:
    certificate: { cert: files/tls-cert.txt, key: files/tls-key.txt }
    clientCa: files/ca-bundle.txt
    allowedSpiffeIds: [spiffe://example.org/ns/ops/sa/operator]
redis: { url: 'rediss://:pw@redis.internal:6380/1', keyPrefix: 'prod:', connectTimeoutMs: 500, commandTimeoutMs: 50 }
rateLimits:
  - { name: per-client, requestsPerSecond: 50, burst: 100, key: client_ip }
  - { name: per-user, requests: 1000, perSeconds: 3600, key: jwt_subject, failureMode: closed }
  - { name: per-key, requestsPerSecond: 5, key: 'header:x-api-key' }
`),
    FILE,
  );
  assert.equal(config.admin?.tokenFile, join(FIXTURES, 'files/admin-token.txt'));
  assert.equal(config.admin?.tls?.clientCa, join(FIXTURES, 'files/ca-bundle.txt'));
  assert.equal(config.rateLimits?.length, 3);
});

test('a route naming a rate limit that does not exist is reported at the reference', () => {
  const issues = issuesOf(base('rateLimits: [{ name: other, requestsPerSecond: 1 }]\n'));
  assert.deepEqual(
    issues.map((i) => [i.path, i.message, i.line]),
    [['/routes/0/rateLimit', 'no rate limit named "per-client"', 6]],
  );
});

test('duplicate rate limit names, bad keys, and rates given both ways are refused', () => {
  const dup = issuesOf(base('rateLimits: [{ name: per-client, requestsPerSecond: 1 }, { name: per-client, requestsPerSecond: 2 }]\n'));
  assert.ok(dup.some((i) => i.path === '/rateLimits/1/name' && /duplicate rate limit name/.test(i.message)), JSON.stringify(dup));
  const key = issuesOf(base('rateLimits: [{ name: per-client, requestsPerSecond: 1, key: cookie }]\n'));
  assert.ok(key.some((i) => i.path === '/rateLimits/0/key'), JSON.stringify(key));
  assert.ok(issuesOf(base('rateLimits: [{ name: per-client, requestsPerSecond: 1, requests: 5, perSeconds: 1 }]\n')).length > 0);
  assert.ok(issuesOf(base('rateLimits: [{ name: per-client, requests: 5 }]\n')).length > 0);
});

test('admin TLS needs a client CA: its own or the mesh bundle', () => {
  const issues = issuesOf(
    base(`admin:
  tls:
    certificate: { cert: files/tls-cert.txt, key: files/tls-key.txt }
    allowedSpiffeIds: [spiffe://example.org/ns/ops/sa/operator]
rateLimits: [{ name: per-client, requestsPerSecond: 1 }]
`),
  );
  assert.deepEqual(
    issues.map((i) => i.path),
    ['/admin/tls'],
  );
});
