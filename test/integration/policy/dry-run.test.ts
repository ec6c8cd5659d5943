// One dry-run model, over real sockets: for each enforcement point (a JWT provider, a route's token requirement, an
// authorization policy, an egress allow rule, a rate limit, an egress byte budget) the same request is refused where
// the point enforces and let through where it is in dry-run, and each would-deny shows up as exactly one
// DRY_RUN_WOULD_DENY line of the common shape and one increment of portcullis_dry_run_would_deny_total{kind,policy}.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRIC_NAMES } from '../../../gateway/core/metrics.js';
import { connectRequest, rawRequest } from '../egress/harness.js';
import { ISSUER, request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { portcullis } from '../../helpers/cli.js';
import { assertPromtoolAccepts } from '../../helpers/promtool.js';

const ROLLOUT_ISSUER = 'https://rollout.test';
const BIG = 65_536;

describe('dry-run: every kind lets the request through and reports one would-deny; enforce refuses', () => {
  let ing: TestIngress;
  let upstream: Server;
  let upstreamPort: number;
  let egressPort: number;

  before(async () => {
    // The egress destination: answers `/big` with 64 KiB, anything else with a short body.
    upstream = createServer((req, res) => res.end(req.url === '/big' ? Buffer.alloc(BIG, 0x61) : 'ok'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    ing = await startTestIngress((config) => {
      const allowAll = (name: string) => ({ name, action: 'ALLOW', routes: [name], rules: [{}] });
      const route = (name: string, extra: object = {}) => ({ name, match: { path: { prefix: `/${name}` } }, upstream: 'echo', ...extra });
      config.jwtProviders.push({ ...config.jwtProviders[0], name: 'rollout', issuer: ROLLOUT_ISSUER, mode: 'dry-run', dryRunSince: '2026-11-01' });
      config.rateLimits = [
        { name: 'rl-enforce', requests: 1, perSeconds: 3600 },
        { name: 'rl-dry', requests: 1, perSeconds: 3600, mode: 'dry-run' },
      ];
      config.routes.unshift(
        route('jwt-enforce', { jwtProviders: ['test'] }),
        route('jwt-dry', { jwtProviders: ['rollout'] }),
        route('login-enforce', { authentication: 'required' }),
        route('login-dry', { authentication: 'required', authenticationMode: 'dry-run' }),
        route('authz-enforce'),
        route('authz-dry'),
        route('rl-enforce', { rateLimit: 'rl-enforce' }),
        route('rl-dry', { rateLimit: 'rl-dry' }),
      );
      const noDelete = (name: string, mode: string) => ({ name, action: 'DENY', mode, routes: [name.replace('no-delete', 'authz')], rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] });
      config.policies.push(
        ...['jwt-enforce', 'jwt-dry', 'login-enforce', 'login-dry', 'authz-enforce', 'authz-dry', 'rl-enforce', 'rl-dry'].map(allowAll),
        noDelete('no-delete-enforce', 'enforce'),
        noDelete('no-delete-dry', 'dry-run'),
      );
      config.egress = {
        listener: { address: '127.0.0.1', port: 0 },
        // The same machine, two callers: 127.0.0.1 is `strict` (enforced rules), 127.0.0.2 is `trial` (dry-run rules).
        sourceIdentities: [
          { name: 'strict', cidrs: ['127.0.0.1/32'] },
          { name: 'trial', cidrs: ['127.0.0.2/32'] },
        ],
        allow: [
          { name: 'strict-web', identities: ['strict'], hosts: ['up.test'], ports: [upstreamPort], byteBudget: { maxBytesPerTunnel: 4096 } },
          { name: 'trial-web', identities: ['trial'], hosts: ['up.test'], ports: [upstreamPort], mode: 'dry-run', byteBudget: { maxBytesPerTunnel: 4096, mode: 'dry-run' } },
        ],
        staticHosts: [
          { host: 'up.test', addresses: ['127.0.0.1'] },
          { host: 'unlisted.test', addresses: ['127.0.0.1'] },
        ],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
      };
    });
    egressPort = ing.gateway.ports.get('egress')!;
  });
  after(async () => {
    await ing.close();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const records = () => ing.logs.filter((l) => l.event === 'DRY_RUN_WOULD_DENY');
  async function counter(kind: string, policy: string): Promise<number> {
    const page = await ing.gateway.metrics.registry.metrics();
    const line = page.split('\n').find((l) => l.startsWith(`${METRIC_NAMES.dryRunWouldDeny}{kind="${kind}",policy="${policy}"}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }
  /** Runs `act` and returns the would-deny lines it added (waiting for the log sink) and the counter's increase. */
  async function reported(kind: string, policy: string, act: () => Promise<void>): Promise<{ lines: Record<string, unknown>[]; increase: number }> {
    const before = { lines: records().length, count: await counter(kind, policy) };
    await act();
    // Log lines reach the in-memory sink asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { lines: records().slice(before.lines), increase: (await counter(kind, policy)) - before.count };
  }
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => request(ing.port, ing.caPem, { path, headers, method });
  /** The token of `issuer` with its signature spoiled: it fails verification (signature_invalid). */
  const forged = async (issuer: string) => {
    const token = await ing.jwks.sign({}, { issuer });
    return `${token.slice(0, -6)}${token.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`;
  };

  test('jwt (provider): a token the enforcing provider refuses is 401; the dry-run provider lets it on anonymous', async () => {
    assert.equal((await get('/jwt-enforce/x', { authorization: `Bearer ${await forged(ISSUER)}` })).status, 401);
    let reply!: Awaited<ReturnType<typeof get>>;
    const { lines, increase } = await reported('jwt', 'rollout', async () => {
      reply = await get('/jwt-dry/x', { authorization: `Bearer ${await forged(ROLLOUT_ISSUER)}` });
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.json().headers.authorization, undefined, 'the token that failed is not forwarded');
    assert.equal(reply.json().headers['x-user'], undefined, 'and the request is anonymous');
    assert.equal(increase, 1);
    assert.equal(lines.length, 1);
    assert.deepEqual(pick(lines[0]!), { kind: 'jwt', policy: 'rollout', reason: 'signature_invalid', requestId: reply.json().headers['x-request-id'], route: 'jwt-dry' });
  });

  test('jwt (route requirement): no token is 401 where required is enforced; in dry-run it goes on', async () => {
    assert.equal((await get('/login-enforce/x')).status, 401);
    let reply!: Awaited<ReturnType<typeof get>>;
    const { lines, increase } = await reported('jwt', 'login-dry', async () => {
      reply = await get('/login-dry/x');
    });
    assert.equal(reply.status, 200);
    assert.equal(increase, 1);
    assert.deepEqual(lines.map(pick), [{ kind: 'jwt', policy: 'login-dry', reason: 'token_missing', requestId: reply.json().headers['x-request-id'], route: 'login-dry' }]);
    const valid = await reported('jwt', 'login-dry', async () => {
      assert.equal((await get('/login-dry/x', { authorization: `Bearer ${await ing.jwks.sign()}` })).status, 200);
    });
    assert.deepEqual(valid, { lines: [], increase: 0 }, 'a valid token is no would-deny');
  });

  test('authz: an enforced DENY is 403; the dry-run DENY lets it through, keeping AUTHZ_DRY_RUN as well', async () => {
    assert.equal((await get('/authz-enforce/x', {}, 'DELETE')).status, 403);
    let reply!: Awaited<ReturnType<typeof get>>;
    const { lines, increase } = await reported('authz', 'no-delete-dry', async () => {
      reply = await get('/authz-dry/x', {}, 'DELETE');
    });
    assert.equal(reply.status, 200);
    assert.equal(increase, 1);
    const requestId = reply.json().headers['x-request-id'];
    assert.deepEqual(lines.map(pick), [{ kind: 'authz', policy: 'no-delete-dry', reason: 'denied_by_policy', requestId, route: 'authz-dry' }]);
    const detailed = ing.logs.find((l) => l.event === 'AUTHZ_DRY_RUN' && l.requestId === requestId);
    assert.equal(detailed?.wouldPolicy, 'no-delete-dry');
    assert.deepEqual(await reported('authz', 'no-delete-dry', async () => void (await get('/authz-dry/x'))), { lines: [], increase: 0 });
  });

  test('rate_limit: over an enforced limit is 429; over a dry-run limit is 200 and reported', async () => {
    assert.equal((await get('/rl-enforce/x')).status, 200);
    assert.equal((await get('/rl-enforce/x')).status, 429);
    assert.equal((await get('/rl-dry/x')).status, 200);
    let reply!: Awaited<ReturnType<typeof get>>;
    const { lines, increase } = await reported('rate_limit', 'rl-dry', async () => {
      reply = await get('/rl-dry/x');
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['retry-after'], undefined);
    assert.equal(increase, 1);
    assert.deepEqual(lines.map(pick), [{ kind: 'rate_limit', policy: 'rl-dry', reason: 'over_limit', requestId: reply.json().headers['x-request-id'], route: 'rl-dry' }]);
    const hits = (await ing.gateway.metrics.registry.metrics()).split('\n').filter((l) => l.startsWith(METRIC_NAMES.rateLimitHits));
    assert.deepEqual(hits, [`${METRIC_NAMES.rateLimitHits}{limit="rl-enforce"} 1`], 'a dry-run limit refuses nothing, so it has no hits');
  });

  test('egress: an unlisted host is refused for the enforced rule; the dry-run rule opens the tunnel and reports it', async () => {
    const refused = await rawRequest(egressPort, connectRequest(`unlisted.test:${upstreamPort}`), '127.0.0.1');
    refused.socket.destroy();
    assert.equal(refused.status, 403);
    let status = 0;
    const { lines, increase } = await reported('egress', 'trial-web', async () => {
      const r = await rawRequest(egressPort, connectRequest(`unlisted.test:${upstreamPort}`), '127.0.0.2');
      status = r.status;
      r.socket.destroy();
    });
    assert.equal(status, 200);
    assert.equal(increase, 1);
    assert.equal(lines.length, 1);
    assert.deepEqual({ ...pick(lines[0]!), requestId: typeof lines[0]!.requestId }, {
      kind: 'egress',
      policy: 'trial-web',
      reason: 'no_rule_matched',
      requestId: 'string',
      identity: 'trial',
      host: 'unlisted.test',
      port: upstreamPort,
    });
  });

  test('byte_budget: an enforced budget cuts the tunnel; a dry-run budget lets 64 KiB through and reports once', async () => {
    assert.ok((await downloadBig('127.0.0.1')) < BIG, 'the enforced budget cut the tunnel');
    let received = 0;
    const { lines, increase } = await reported('byte_budget', 'trial-web', async () => {
      received = await downloadBig('127.0.0.2');
    });
    assert.ok(received > BIG, `received ${received}`);
    assert.equal(increase, 1);
    assert.deepEqual(lines.map((l) => ({ ...pick(l), requestId: typeof l.requestId })), [
      { kind: 'byte_budget', policy: 'trial-web', reason: 'byte_budget_exceeded', requestId: 'string', identity: 'trial', host: 'up.test', port: upstreamPort },
    ]);
  });

  test('every line has the one shape, and promtool accepts the metrics page', async (t) => {
    const kinds = new Set(records().map((l) => l.kind));
    assert.deepEqual([...kinds].sort(), ['authz', 'byte_budget', 'egress', 'jwt', 'rate_limit']);
    for (const line of records()) {
      assert.equal(line.level, 'warn');
      assert.ok(typeof line.policy === 'string' && line.policy !== '' && typeof line.reason === 'string' && typeof line.requestId === 'string');
      assert.ok(typeof line.route === 'string' || typeof line.identity === 'string');
    }
    assertPromtoolAccepts(t, await ing.gateway.metrics.registry.metrics());
  });

  test('explain names what a JWT dry-run would refuse, and still forwards', async () => {
    const route = await portcullis(['explain', '-c', ing.configFile, '--url', 'https://localhost/login-dry/x']);
    assert.equal(route.code, 0, route.stderr);
    assert.match(route.stdout, /^authentication\s+ok\s+no client certificate; no token \(anonymous\); dry-run: route 'login-dry' would refuse it \(token_missing\)$/m);
    const enforced = await portcullis(['explain', '-c', ing.configFile, '--url', 'https://localhost/login-enforce/x']);
    assert.equal(enforced.code, 1, 'the gateway answers 401 here, and so does explain');
    assert.match(enforced.stdout, /^decision: refuse 401 GW_AUTHN_REQUIRED/m);
    const provider = await portcullis(['explain', '-c', ing.configFile, '--url', 'https://localhost/jwt-dry/x', '-H', `authorization: Bearer ${await forged(ROLLOUT_ISSUER)}`]);
    assert.equal(provider.code, 0, provider.stderr);
    assert.match(provider.stdout, /dry-run: provider 'rollout' would refuse the token \(signature_invalid\)$/m);
    assert.match(provider.stdout, /^decision: forward to 'echo'/m);
  });

  /** Through a CONNECT tunnel from `localAddress`: `GET /big`, and the bytes that came back before the tunnel closed. */
  async function downloadBig(localAddress: string): Promise<number> {
    const r = await rawRequest(egressPort, connectRequest(`up.test:${upstreamPort}`), localAddress);
    assert.equal(r.status, 200);
    return new Promise((resolve) => {
      let received = 0;
      r.socket.on('data', (c: Buffer) => {
        received += c.length;
        if (received > BIG) r.socket.end();
      });
      r.socket.on('close', () => resolve(received));
      r.socket.write('GET /big HTTP/1.1\r\nHost: up.test\r\nConnection: close\r\n\r\n');
    });
  }
});

/** The fields of the common record. */
function pick(line: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['kind', 'policy', 'reason', 'requestId', 'route', 'identity', 'host', 'port']) if (line[key] !== undefined) out[key] = line[key];
  return out;
}
