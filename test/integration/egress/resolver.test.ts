// `egress.resolver`: destination names are resolved by the configured DNS servers (here a server the test runs),
// still once per attempt, and the address that was checked is the one dialled.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { curl, startHttpUpstream, startProxy, tempDir, type Proxy, type TempDir, type Upstream } from './harness.js';

describe('egress with a configured resolver', () => {
  let dir: TempDir;
  let up: Upstream;
  let dns: DnsServer;
  let proxy: Proxy;

  before(async () => {
    dir = tempDir();
    up = await startHttpUpstream('partner');
    dns = await startDnsServer({ 'partner.test': ['127.0.0.1'], 'metadata.test': ['169.254.169.254'], 'hung.test': 'hang' });
    const hosts = ['partner.test', 'metadata.test', 'hung.test', 'unknown.test'];
    proxy = await startProxy(dir, {
      resolver: { servers: [`127.0.0.1:${dns.port}`], timeoutMs: 300 },
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
      allow: [{ name: 'partner', identities: ['local'], hosts, ports: [up.port] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
      limits: { dnsTimeoutMs: 1_000 },
    });
  });
  after(async () => {
    await proxy.close();
    await dns.close();
    await up.close();
    dir.remove();
  });

  const get = (host: string) => curl(['-s', '-i', '-x', `http://127.0.0.1:${proxy.port}`, `http://${host}:${up.port}/`]);

  test('a name the server answers is resolved there once and its address dialled', async () => {
    dns.queries.length = 0;
    const r = await get('partner.test');
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    assert.match(r.stdout, /hello from partner/);
    assert.deepEqual(dns.queries.sort(), ['partner.test A', 'partner.test AAAA']);
  });

  test('an answer the address guard blocks is refused (403), nothing dialled', async () => {
    const before = up.connections;
    const r = await get('metadata.test');
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
    assert.match(r.stdout, /"reason":"metadata"/);
    assert.equal(up.connections, before);
  });

  test('NXDOMAIN fails closed (502 dns_failed); a silent server times out (504 dns_timeout)', async () => {
    const nx = await get('unknown.test');
    assert.match(nx.stdout, /^HTTP\/1\.1 502/);
    assert.match(nx.stdout, /"reason":"dns_failed"/);
    const started = Date.now();
    const hung = await get('hung.test');
    assert.match(hung.stdout, /^HTTP\/1\.1 504/);
    assert.match(hung.stdout, /"reason":"dns_timeout"/);
    assert.ok(Date.now() - started < 2_000, 'answered within the configured timeouts');
  });
});
