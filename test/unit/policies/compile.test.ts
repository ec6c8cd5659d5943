import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { compilePolicies, PolicyCompileError } from '../../../policies/compile.js';
import { evaluate, evaluateConnection } from '../../../policies/evaluate.js';
import { PolicyFileSchema, type Policy, type PolicyFile } from '../../../policies/schema.js';
import { request } from './request.js';

function problemsOf(policies: unknown[], options?: Parameters<typeof compilePolicies>[1]): readonly string[] {
  try {
    compilePolicies(policies as Policy[], options);
  } catch (err) {
    assert.ok(err instanceof PolicyCompileError);
    return err.problems;
  }
  return [];
}

const withRule = (rule: unknown): unknown[] => [{ name: 'p', action: 'ALLOW', rules: [rule] }];
const R = 'policies[0].rules[0]';

describe('compile errors', () => {
  const cases: [name: string, policies: unknown[], problem: string][] = [
    ['bad CIDR', withRule({ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }), `${R}.from[0].source.ipBlocks[0]: "10.0.0.0/33" is not`],
    ['not an address', withRule({ from: [{ source: { remoteIpBlocks: ['10.0.0.x'] } }] }), `${R}.from[0].source.remoteIpBlocks[0]:`],
    ['octal-looking IPv4', withRule({ from: [{ source: { notIpBlocks: ['010.0.0.1'] } }] }), `${R}.from[0].source.notIpBlocks[0]:`],
    ['IPv6 zone in CIDR', withRule({ from: [{ source: { ipBlocks: ['fe80::1%eth0/64'] } }] }), `${R}.from[0].source.ipBlocks[0]:`],
    ['{**} not last', withRule({ to: [{ operation: { paths: ['/a/{**}/b'] } }] }), `${R}.to[0].operation.paths[0]: '{**}' must be the last`],
    ['{*} inside a segment', withRule({ to: [{ operation: { paths: ['/a/x{*}'] } }] }), `${R}.to[0].operation.paths[0]: in a path template`],
    ['* in a template literal (envoy#39168)', withRule({ to: [{ operation: { paths: ['/a/*/{*}'] } }] }), `${R}.to[0].operation.paths[0]: in a path template`],
    ['unbalanced brace', withRule({ to: [{ operation: { paths: ['/a/{*'] } }] }), `${R}.to[0].operation.paths[0]: in a path template`],
    ['star in the middle', withRule({ to: [{ operation: { notPaths: ['/a/*/b'] } }] }), `${R}.to[0].operation.notPaths[0]: '*' is allowed only`],
    ['star both ends', withRule({ to: [{ operation: { hosts: ['*example*'] } }] }), `${R}.to[0].operation.hosts[0]: '*' is allowed only`],
    ['path without slash', withRule({ to: [{ operation: { paths: ['admin'] } }] }), `${R}.to[0].operation.paths[0]: paths start with '/'`],
    ['path with query (CVE-2020-8595)', withRule({ to: [{ operation: { paths: ['/login?next=*'] } }] }), `${R}.to[0].operation.paths[0]: paths never include a query`],
    ['path that normalization rewrites', withRule({ to: [{ operation: { paths: ['/a/../admin'] } }] }), `${R}.to[0].operation.paths[0]: '/a/../admin' is not a normalized path`],
    ['path with encoded unreserved', withRule({ to: [{ operation: { paths: ['/%61dmin*'] } }] }), `${R}.to[0].operation.paths[0]:`],
    ['host with port (ISTIO-SECURITY-2021-008)', withRule({ to: [{ operation: { hosts: ['api.example.com:443'] } }] }), `${R}.to[0].operation.hosts[0]: hosts are matched without the port`],
    ['host with port wildcard', withRule({ to: [{ operation: { notHosts: ['api.example.com:*'] } }] }), `${R}.to[0].operation.notHosts[0]: hosts are matched without the port`],
    ['lower-case method', withRule({ to: [{ operation: { methods: ['get'] } }] }), `${R}.to[0].operation.methods[0]: methods are exact`],
    ['port out of range', withRule({ when: [{ key: 'destination.port', values: ['70000'] }] }), `${R}.when[0].values[0]: not a port number`],
    ['unknown when key (CVE-2022-21679)', withRule({ when: [{ key: 'source.namespace', values: ['x'] }] }), `${R}.when[0].key: unknown key 'source.namespace'`],
    ['bad header name', withRule({ when: [{ key: 'request.headers[x role]', values: ['a'] }] }), `${R}.when[0].key: 'x role' is not a valid header name`],
    ['bad claim key', withRule({ when: [{ key: 'request.auth.claims[]', values: ['a'] }] }), `${R}.when[0].key: unknown key`],
    ['condition without values', withRule({ when: [{ key: 'source.ip' }] }), `${R}.when[0]: a condition needs`],
    ['bad CIDR in condition', withRule({ when: [{ key: 'remote.ip', notValues: ['::1/129'] }] }), `${R}.when[0].notValues[0]:`],
    ['unknown source field', withRule({ from: [{ source: { namespaces: ['x'] } }] }), `${R}.from[0].source.namespaces: unknown field`],
    ['empty value list', withRule({ from: [{ source: { principals: [] } }] }), `${R}.from[0].source.principals: must be a non-empty list`],
    ['empty from', withRule({ from: [] }), `${R}.from: empty list`],
    ['empty routes', [{ name: 'p', action: 'ALLOW', routes: [] }], `policies[0].routes: empty list`],
    ['dry-run AUDIT', [{ name: 'p', action: 'AUDIT', mode: 'dry-run' }], `policies[0].mode: dry-run applies to ALLOW and DENY`],
    ['duplicate policy', [{ name: 'p', action: 'ALLOW' }, { name: 'p', action: 'DENY' }], `policies[1].name: duplicate policy name 'p'`],
    ['duplicate rule', [{ name: 'p', action: 'ALLOW', rules: [{ name: 'r' }, { name: 'r' }] }], `policies[0].rules[1].name: duplicate rule name 'r'`],
  ];
  for (const [name, policies, problem] of cases) {
    test(name, () => {
      const problems = problemsOf(policies);
      assert.ok(problems.some((p) => p.startsWith(problem)), `expected "${problem}" in ${JSON.stringify(problems)}`);
    });
  }

  test('every problem is reported at once', () => {
    const problems = problemsOf([
      { name: 'a', action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['nope'] } }], when: [{ key: 'nope', values: ['x'] }] }] },
      { name: 'b', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/{**}/x'] } }] }] },
    ]);
    assert.equal(problems.length, 3);
    assert.match(String(new PolicyCompileError(problems).message), /^invalid policies:\n {2}- policies\[0\]/);
  });

  test('unknown route names are errors when the routes are given', () => {
    const policies = [{ name: 'p', action: 'DENY', routes: ['shop', 'shpo'] }];
    assert.deepEqual(problemsOf(policies, { routes: ['shop'] }), [`policies[0].routes[1]: no route named "shpo"`]);
    assert.deepEqual(problemsOf(policies), []);
  });

  test('valid edge cases compile', () => {
    assert.deepEqual(
      problemsOf(withRule({
        from: [{ source: { ipBlocks: ['::ffff:10.0.0.0/104', '2001:db8::/32', '10.1.2.3', '0.0.0.0/0'], principals: ['*'] } }],
        to: [{ operation: { paths: ['/.well-known/*', '/.well*', '*.png', '/{**}', '/a/{*}/b'], hosts: ['[::1]', '*.example.com'], methods: ['*'] } }],
        when: [{ key: 'request.auth.claims[realm_access][roles]', values: ['admin'] }, { key: 'request.headers[X-Forwarded-Client-Cert]', notValues: ['*'] }],
      })),
      [],
    );
  });

  test('the compiled set is frozen', () => {
    const set = compilePolicies([{ name: 'p', action: 'ALLOW', rules: [{}] }]);
    assert.ok(Object.isFrozen(set));
    assert.ok(Object.isFrozen(set.otherRoutes.allow));
    assert.ok(Object.isFrozen(set.otherRoutes.allow[0]?.rules[0]));
  });
});

describe('example policy files', async () => {
  const dir = fileURLToPath(new URL('../../../policies/examples/', import.meta.url));
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  const validate = new Ajv({ allErrors: true }).compile<PolicyFile>(PolicyFileSchema);

  test('there are examples', () => assert.ok(files.length >= 3));
  for (const file of files) {
    test(`${file} passes the schema and compiles`, async () => {
      const doc: unknown = parse(await readFile(dir + file, 'utf8'));
      assert.ok(validate(doc), JSON.stringify(validate.errors));
      compilePolicies(doc.policies, { routes: ['admin', 'shop', 'api'] });
    });
  }

  test('deny-admin-except-operator behaves as described', async () => {
    const doc = parse(await readFile(dir + 'deny-admin-except-operator.yaml', 'utf8')) as PolicyFile;
    const set = compilePolicies(doc.policies);
    const operator = 'spiffe://cluster.local/ns/ops/sa/operator';
    assert.equal(evaluate(set, 'admin', request({ path: '/admin/users', peerSpiffeId: operator })).allowed, true);
    assert.equal(evaluate(set, 'admin', request({ path: '/admin/users' })).policy, 'admin-only-operator');
    assert.equal(evaluate(set, 'admin', request({ path: '/admin', peerSpiffeId: undefined })).allowed, false);
    const audited = evaluate(set, 'admin', request({ method: 'DELETE', path: '/admin/x', peerSpiffeId: operator }));
    assert.deepEqual(audited.audit.map((a) => a.policy), ['audit-admin']);
  });

  test('require-jwt-for-api behaves as described', async () => {
    const doc = parse(await readFile(dir + 'require-jwt-for-api.yaml', 'utf8')) as PolicyFile;
    const set = compilePolicies(doc.policies);
    const auth = { issuer: 'https://auth.example.com', claims: { scope: 'orders:read orders:write' } };
    assert.equal(evaluate(set, 'api', request({ path: '/api/orders' })).allowed, false);
    assert.equal(evaluate(set, 'api', request({ path: '/api/orders', auth })).allowed, true);
    assert.equal(evaluate(set, 'api', request({ path: '/healthz' })).allowed, true);
    assert.equal(evaluate(set, 'api', request({ method: 'POST', path: '/api/orders/7', auth })).allowed, true);
    const readOnly = { ...auth, claims: { scope: 'orders:read' } };
    assert.equal(evaluate(set, 'api', request({ method: 'POST', path: '/api/orders/7', auth: readOnly })).policy, 'api-writes-need-scope');
  });

  test('dry-run-rollout never enforces but reports', async () => {
    const doc = parse(await readFile(dir + 'dry-run-rollout.yaml', 'utf8')) as PolicyFile;
    const set = compilePolicies(doc.policies);
    const d = evaluate(set, 'shop', request({ peerSpiffeId: 'spiffe://cluster.local/ns/shop/sa/web', remoteIp: '2001:db8:dead::1' }));
    assert.deepEqual([d.allowed, d.shadowAllowed, d.shadowRule], [true, false, 'old-network']);
  });
});

describe('policies on passthrough hosts', () => {
  const targets = { routes: ['shop'], passthroughHosts: ['db'] };
  const on = (rule: unknown, extra: object = {}): unknown[] => [{ name: 'p', action: 'ALLOW', routes: ['db'], rules: [rule], ...extra }];

  test('addresses, ports and the SNI compile', () => {
    const rule = {
      from: [{ source: { ipBlocks: ['10.0.0.0/8'], notRemoteIpBlocks: ['10.9.0.0/16'] } }],
      to: [{ operation: { hosts: ['db.example.com'], notPorts: [8443] } }],
      when: [{ key: 'connection.sni', values: ['db.example.com'] }, { key: 'source.ip', notValues: ['10.1.1.1'] }, { key: 'destination.port', values: ['443'] }],
    };
    assert.deepEqual(problemsOf(on(rule), targets), []);
  });

  test('request and identity fields are refused: the gateway never sees a request or a verified peer there', () => {
    const rule = {
      from: [{ source: { principals: ['td/ns/a/sa/b'], notRequestPrincipals: ['*'] } }],
      to: [{ operation: { paths: ['/admin'], methods: ['GET'] } }],
      when: [{ key: 'request.headers[x-a]', values: ['1'] }, { key: 'source.principal', values: ['td/ns/a/sa/b'] }],
    };
    const problems = problemsOf(on(rule), targets);
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(':'))),
      [
        `${R}.from[0].source.principals`,
        `${R}.from[0].source.notRequestPrincipals`,
        `${R}.to[0].operation.paths`,
        `${R}.to[0].operation.methods`,
        `${R}.when[0].key`,
        `${R}.when[1].key`,
      ],
    );
    assert.match(problems[0]!, /no request and no identity the gateway verified/);
  });

  test('a policy names passthrough hosts or routes, not both; a name may not be both', () => {
    assert.deepEqual(problemsOf([{ name: 'p', action: 'DENY', routes: ['db', 'shop'] }], targets), [
      `policies[0].routes[1]: 'shop' is no passthrough host; a policy names passthrough hosts or routes, not both`,
    ]);
    assert.deepEqual(problemsOf([{ name: 'p', action: 'DENY', routes: ['db'] }], { routes: ['db'], passthroughHosts: ['db'] }), [
      `policies[0].routes[0]: 'db' names both a route and a passthrough host; rename one`,
    ]);
  });

  test('only the policies naming the host judge its connections; a host no policy names is not judged', () => {
    const set = compilePolicies(
      [
        { name: 'everywhere', action: 'DENY', rules: [{}] },
        { name: 'db-office', action: 'ALLOW', routes: ['db'], rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] },
      ] as Policy[],
      { routes: ['shop'], passthroughHosts: ['db', 'cache'] },
    );
    const connection = (sourceIp: string) => ({ ...request({ sourceIp, remoteIp: sourceIp }), sni: 'db.test' });
    assert.equal(evaluateConnection(set, 'db', connection('10.1.2.3'))?.reason, 'allowed_by_policy');
    assert.equal(evaluateConnection(set, 'db', connection('192.0.2.1'))?.reason, 'no_allow_policy_matched');
    assert.equal(evaluateConnection(set, 'cache', connection('192.0.2.1')), undefined);
    assert.equal(evaluate(set, 'shop', request({})).reason, 'denied_by_policy');
  });
});
