// The traffic fields' checks beyond the schema (gateway/config/compile.ts), through the real loader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, loadConfigText } from '../../../gateway/config/load.js';

const BASE = {
  version: 'v1',
  listeners: [],
  routes: [],
};

function issues(upstreams: unknown[]): string[] {
  try {
    loadConfigText(stringify({ ...BASE, upstreams }), '/tmp/traffic-checks.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

test('endpoints and dns exclude each other; consistentHash and hashOn go together', () => {
  assert.deepEqual(
    issues([
      { name: 'both', url: 'http://a.internal:80', endpoints: [{ address: '10.0.0.1:80' }], dns: { name: 'a.internal', port: 80 } },
      { name: 'nokey', url: 'http://a.internal:80', loadBalancer: { policy: 'consistentHash' } },
      { name: 'stray', url: 'http://a.internal:80', loadBalancer: { hashOn: { header: 'x-user' } } },
    ]),
    [
      '/upstreams/0/dns: set either endpoints or dns, not both',
      '/upstreams/1/loadBalancer/hashOn: consistentHash needs hashOn (a header, a cookie or sourceIp)',
      '/upstreams/2/loadBalancer/hashOn: only read by the consistentHash policy',
    ],
  );
});

test('a passthrough upstream is one TCP destination: no traffic fields', () => {
  assert.deepEqual(issues([{ name: 'pg', url: 'tcp://127.0.0.1:5432', endpoints: [{ address: '10.0.0.1:5432' }], maxRequests: 5 }]), [
    '/upstreams/0/endpoints: only applies to http:// and https:// upstreams',
    '/upstreams/0/maxRequests: only applies to http:// and https:// upstreams',
  ]);
});

test('the schema refuses endpoint addresses without a port, and bad weights', () => {
  const found = issues([{ name: 'a', url: 'http://a.internal:80', endpoints: [{ address: '10.0.0.1' }, { address: '10.0.0.2:80', weight: 0 }] }]);
  assert.equal(found.length, 2, found.join('\n'));
  assert.match(found[0]!, /^\/upstreams\/0\/endpoints\/0\/address/);
  assert.match(found[1]!, /^\/upstreams\/0\/endpoints\/1\/weight/);
});

test('a WebSocket route needs an HTTP/1.1 upstream on every backend, and is no redirect', () => {
  const config = {
    ...BASE,
    upstreams: [
      { name: 'grpc', url: 'http://grpc.internal:8080', protocol: 'h2' },
      { name: 'web', url: 'http://web.internal:8080' },
    ],
    routes: [
      { name: 'chat', match: {}, upstream: 'grpc', websocket: true },
      { name: 'split', match: {}, backendRefs: [{ name: 'web' }, { name: 'grpc' }], websocket: true },
      { name: 'moved', match: {}, filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.com' } }], websocket: true },
      { name: 'fine', match: {}, upstream: 'web', websocket: { idleTimeoutMs: 1000 } },
    ],
  };
  let issues: string[] = [];
  try {
    loadConfigText(stringify(config), '/tmp/traffic-checks.yaml');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues = err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.deepEqual(issues, [
    '/routes/0/websocket: upstream "grpc" speaks h2; a WebSocket needs an HTTP/1.1 upstream',
    '/routes/1/websocket: upstream "grpc" speaks h2; a WebSocket needs an HTTP/1.1 upstream',
    '/routes/2/websocket: a redirect route sends nothing upstream, so no WebSocket either',
  ]);
});
