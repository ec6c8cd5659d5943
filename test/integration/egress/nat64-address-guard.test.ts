// NAT64 against the address guard: in an IPv6-only cluster DNS64 answers an IPv4-only name with 64:ff9b::/96 plus
// the IPv4 address (RFC 6052), and the gateway dials that. The IPv4 deny list and the built-in classes must judge
// the embedded address: `denyAddresses: [93.184.215.14]` closes `64:ff9b::5db8:d70e`, and `64:ff9b::a9fe:a9fe`
// is the metadata service. Each NAT64 answer, from a real DNS server or as a CONNECT literal, is refused exactly
// like its IPv4 form (403 GW_EGRESS_ADDRESS_BLOCKED), nothing is dialled, and every refusal is audited.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { connectRequest, curl, rawRequest, startHttpUpstream, startProxy, tempDir, type Proxy, type TempDir, type Upstream } from './harness.js';

const DENIED_V4 = '93.184.215.14';
const DENIED_NAT64 = '64:ff9b::5db8:d70e';

describe('egress address guard: NAT64 answers are judged by their IPv4 address', () => {
  let dir: TempDir;
  let up: Upstream;
  let dns: DnsServer;
  let proxy: Proxy;

  before(async () => {
    dir = tempDir();
    up = await startHttpUpstream('partner');
    dns = await startDnsServer({
      'partner.test': ['127.0.0.1'],
      'metadata.test': ['169.254.169.254'],
      'metadata64.test': ['64:ff9b::a9fe:a9fe'],
      'private64.test': ['64:ff9b::a00:1'],
      'denied.test': [DENIED_V4],
      'denied64.test': [DENIED_NAT64],
    });
    const hosts = ['partner.test', 'metadata.test', 'metadata64.test', 'private64.test', 'denied.test', 'denied64.test'];
    proxy = await startProxy(dir, {
      resolver: { servers: [`127.0.0.1:${dns.port}`], timeoutMs: 300 },
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
      allow: [
        { name: 'by-name', identities: ['local'], hosts, ports: [up.port] },
        // The allowlist lets the literals through, so only the address guard stands in their way.
        { name: 'literals', identities: ['local'], cidrs: ['169.254.169.254', '64:ff9b::/96'], ports: [80] },
      ],
      addressGuard: { allowAddresses: ['127.0.0.1'], denyAddresses: [DENIED_V4] },
      limits: { dnsTimeoutMs: 1_000 },
    });
  });
  after(async () => {
    await dns.close();
    await up.close();
    dir.remove();
  });

  const get = (host: string) => curl(['-s', '-i', '-x', `http://127.0.0.1:${proxy.port}`, `http://${host}:${up.port}/`]);
  const refusal = (stdout: string) => [/^HTTP\/1\.1 (\d{3})/.exec(stdout)?.[1], /"code":"([A-Z_]+)"/.exec(stdout)?.[1], /"reason":"([a-z0-9_]+)"/.exec(stdout)?.[1]];

  test('the resolver and the grant work (a name on an allowed address is served)', async () => {
    const r = await get('partner.test');
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
  });

  test('a NAT64 answer for an IPv4 in denyAddresses is refused like the IPv4 answer', async () => {
    const before = up.connections;
    assert.deepEqual(refusal((await get('denied.test')).stdout), ['403', 'GW_EGRESS_ADDRESS_BLOCKED', 'explicitly_denied']);
    assert.deepEqual(refusal((await get('denied64.test')).stdout), ['403', 'GW_EGRESS_ADDRESS_BLOCKED', 'explicitly_denied']);
    assert.equal(up.connections, before);
  });

  test('NAT64 answers for the metadata and a private address are blocked, naming the form', async () => {
    assert.deepEqual(refusal((await get('metadata.test')).stdout), ['403', 'GW_EGRESS_ADDRESS_BLOCKED', 'metadata']);
    assert.deepEqual(refusal((await get('metadata64.test')).stdout), ['403', 'GW_EGRESS_ADDRESS_BLOCKED', 'nat64']);
    assert.deepEqual(refusal((await get('private64.test')).stdout), ['403', 'GW_EGRESS_ADDRESS_BLOCKED', 'nat64']);
  });

  test('CONNECT [64:ff9b::a9fe:a9fe]:80 is refused with the same code as CONNECT 169.254.169.254:80', async () => {
    const v4 = await rawRequest(proxy.port, connectRequest('169.254.169.254:80'));
    const v6 = await rawRequest(proxy.port, connectRequest('[64:ff9b::a9fe:a9fe]:80'));
    assert.deepEqual([v6.status, v6.headers['x-portcullis-code']], [v4.status, v4.headers['x-portcullis-code']]);
    assert.deepEqual([v6.status, v6.headers['x-portcullis-code']], [403, 'GW_EGRESS_ADDRESS_BLOCKED']);
    const denied = await rawRequest(proxy.port, connectRequest(`[${DENIED_NAT64}]:80`));
    assert.deepEqual([denied.status, denied.headers['x-portcullis-code']], [403, 'GW_EGRESS_ADDRESS_BLOCKED']);
  });

  test('every refusal is audited with the address that caused it', async () => {
    await proxy.close();
    const blocked = proxy.records().filter((r) => r.code === 'GW_EGRESS_ADDRESS_BLOCKED');
    const seen = blocked.map((r) => `${r.proxyType} ${r.host} ${r.address} ${r.reason} ${r.allow}`);
    for (const line of [
      `http denied.test ${DENIED_V4} explicitly_denied false`,
      `http denied64.test ${DENIED_NAT64} explicitly_denied false`,
      'http metadata64.test 64:ff9b::a9fe:a9fe nat64 false',
      'http private64.test 64:ff9b::a00:1 nat64 false',
      'connect 64:ff9b::a9fe:a9fe 64:ff9b::a9fe:a9fe nat64 false',
      `connect ${DENIED_NAT64} ${DENIED_NAT64} explicitly_denied false`,
    ]) {
      assert.ok(seen.includes(line), `${line} not in ${JSON.stringify(seen, null, 1)}`);
    }
  });
});
