// The egress gateway with real clients (curl, undici's ProxyAgent, raw sockets) against upstreams on 127.0.0.1.
// The upstreams are reachable only because `allowAddresses: [127.0.0.1]` opens the loopback address explicitly.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Socket } from 'node:net';
import { ProxyAgent, request } from 'undici';
import type { ConnectFn } from '../../../gateway/egress/stages/dial.js';
import { testPki } from '../../helpers/pki.js';
import { connectRequest, curl, eventually, localGrant, rawRequest, startHttpUpstream, startProxy, startTlsUpstream, tempDir, type Proxy, type TempDir, type TlsUpstream, type Upstream, type RawResponse } from './harness.js';

describe('egress forward proxy', () => {
  let dir: TempDir;
  let http: Upstream;
  let https: TlsUpstream;
  let proxy: Proxy;
  let caFile: string;

  before(async () => {
    dir = tempDir();
    caFile = dir.file('ca.pem', testPki().ca.certPem);
    http = await startHttpUpstream('allowed');
    https = await startTlsUpstream();
    proxy = await startProxy(dir, {
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1/32'] }],
      allow: [
        { name: 'local-allowed', identities: ['local'], hosts: ['allowed.test'], ports: [http.port] },
        { name: 'local-secure', identities: ['local'], hosts: ['secure.test'], ports: [https.port] },
      ],
      staticHosts: [
        { host: 'allowed.test', addresses: ['127.0.0.1'] },
        { host: 'secure.test', addresses: ['127.0.0.1'] },
        { host: 'elsewhere.test', addresses: ['127.0.0.1'] },
      ],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
    });
  });

  after(async () => {
    await proxy.close();
    await http.close();
    await https.close();
    dir.remove();
  });

  test('curl -x: absolute-form HTTP to an allowed host reaches it', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, `http://allowed.test:${http.port}/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from allowed');
    assert.equal(http.lastHeaders?.host, `allowed.test:${http.port}`);
  });

  test('curl -x: CONNECT tunnel with TLS end to end (SNI = CONNECT host)', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '--cacert', caFile, `https://secure.test:${https.port}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tls hello/);
  });

  test('undici ProxyAgent: https through the tunnel', async () => {
    const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, requestTls: { ca: testPki().ca.certPem } });
    try {
      const res = await request(`https://secure.test:${https.port}/undici`, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.match(await res.body.text(), /^tls hello/);
    } finally {
      await dispatcher.close();
    }
  });

  test('a host no rule lists: 403 with the reason code, nothing dialled', async () => {
    const before = http.connections;
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '-i', `http://elsewhere.test:${http.port}/`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
    assert.match(r.stdout, /x-portcullis-code: GW_EGRESS_DENIED/i);
    assert.match(r.stdout, /"reason":"no_rule_matched"/);
    const raw = await rawRequest(proxy.port, connectRequest(`elsewhere.test:${https.port}`));
    assert.equal(raw.status, 403);
    assert.equal(raw.headers['x-portcullis-code'], 'GW_EGRESS_DENIED');
    assert.equal(http.connections, before);
  });

  test('an allowed host on a port the rule does not list is denied', async () => {
    const raw = await rawRequest(proxy.port, connectRequest('allowed.test:22'));
    assert.equal(raw.status, 403);
    assert.equal(raw.headers['x-portcullis-code'], 'GW_EGRESS_DENIED');
  });

  test('origin-form requests are refused: this is not a web server', async () => {
    const r = await rawRequest(proxy.port, 'GET /x HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-portcullis-code'], 'GW_REQUEST_MALFORMED');
  });

  test('a Host header naming another authority than the target is refused (400)', async () => {
    const before = http.hits;
    const r = await rawRequest(
      proxy.port,
      `GET http://allowed.test:${http.port}/ HTTP/1.1\r\nHost: elsewhere.test:${http.port}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(r.status, 400);
    assert.equal(http.hits, before);
  });

  test('hop-by-hop headers, Connection-listed headers and Proxy-Authorization are not forwarded', async () => {
    const r = await rawRequest(
      proxy.port,
      `GET http://allowed.test:${http.port}/h HTTP/1.1\r\nHost: allowed.test:${http.port}\r\n` +
        'Proxy-Authorization: Bearer secret\r\nConnection: close, x-private\r\nX-Private: 1\r\nX-Kept: 2\r\n\r\n',
    );
    assert.equal(r.status, 200);
    assert.equal(http.lastHeaders?.['proxy-authorization'], undefined);
    assert.equal(http.lastHeaders?.['x-private'], undefined);
    assert.equal(http.lastHeaders?.['x-kept'], '2');
  });
});

describe('egress proxy without a caller identity', () => {
  test('anonymous callers get 407 with Proxy-Authenticate', async () => {
    const dir = tempDir();
    const proxy = await startProxy(dir, { allow: [{ name: 'svc', identities: ['spiffe://portcullis.test/ns/a/*'], hosts: ['a.test'] }] });
    try {
      const r = await rawRequest(proxy.port, connectRequest('a.test:443'));
      assert.equal(r.status, 407);
      assert.equal(r.headers['x-portcullis-code'], 'GW_EGRESS_NO_IDENTITY');
      assert.match(r.headers['proxy-authenticate'] ?? '', /realm="portcullis-egress"/);
      const h = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '-i', 'http://a.test/']);
      assert.match(h.stdout, /^HTTP\/1\.1 407/);
    } finally {
      await proxy.close();
      dir.remove();
    }
  });
});

describe('egress limits', () => {
  test('oversized request headers are refused with 431', async () => {
    const dir = tempDir();
    const proxy = await startProxy(dir, { listener: { maxHeaderBytes: 1024 }, allow: [] });
    try {
      const r = await rawRequest(proxy.port, `GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
      assert.equal(r.status, 431);
    } finally {
      await proxy.close();
      dir.remove();
    }
  });

  test('concurrent tunnels per identity are limited (429) and the slot is freed on close', async () => {
    const dir = tempDir();
    const up = await startHttpUpstream();
    const proxy = await startProxy(dir, {
      ...localGrant('up.test', up.port),
      limits: { maxTunnelsPerIdentity: 1 },
    });
    try {
      const first = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
      assert.equal(first.status, 200);
      const second = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
      assert.equal(second.status, 429);
      assert.equal(second.headers['x-portcullis-code'], 'GW_RATE_LIMITED');
      first.socket.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const third = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
      assert.equal(third.status, 200);
      third.socket.destroy();
    } finally {
      await proxy.close();
      await up.close();
      dir.remove();
    }
  });

  test('one source cannot starve the others: anonymous callers are also limited per source address (#10)', async () => {
    const dir = tempDir();
    const up = await startHttpUpstream();
    const proxy = await startProxy(dir, {
      allow: [{ name: 'up', identities: ['anonymous'], hosts: ['up.test'], ports: [up.port] }],
      staticHosts: [{ host: 'up.test', addresses: ['127.0.0.1'] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
      limits: { maxTunnelsPerIdentity: 3, maxTunnelsPerSource: 2 },
    });
    const open = (source: string) => rawRequest(proxy.port, connectRequest(`up.test:${up.port}`), source);
    const tunnels: RawResponse[] = [];
    try {
      for (let i = 0; i < 2; i++) tunnels.push(await open('127.0.0.1'));
      assert.deepEqual(tunnels.map((t) => t.status), [200, 200]);
      const greedy = await open('127.0.0.1');
      assert.equal(greedy.status, 429);
      assert.match(greedy.body, /"reason":"too_many_tunnels_from_source"/);
      const other = await open('127.0.0.2');
      assert.equal(other.status, 200, 'another source still gets a tunnel');
      tunnels.push(other);
      const overIdentity = await open('127.0.0.2');
      assert.equal(overIdentity.status, 429);
      assert.match(overIdentity.body, /"reason":"too_many_tunnels"/, 'the identity budget still bounds them all');
    } finally {
      for (const t of tunnels) t.socket.destroy();
      await proxy.close();
      await up.close();
      dir.remove();
    }
  });

  test('an idle tunnel is closed after idleTimeoutMs', async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    const up = await startHttpUpstream();
    const proxy = await startProxy(dir, {
      ...localGrant('up.test', up.port),
      limits: { idleTimeoutMs: 150 },
    });
    try {
      const r = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
      assert.equal(r.status, 200);
      const started = Date.now();
      await new Promise((resolve) => r.socket.once('close', resolve));
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await proxy.close();
      await up.close();
    }
    assert.equal(proxy.records()[0]?.end, 'idle_timeout');
  });

  test('a tunnel over its byte budget is cut and audited as an alert', async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    const up = await startHttpUpstream();
    const proxy = await startProxy(dir, {
      ...localGrant('up.test', up.port),
      limits: { maxBytesPerTunnel: 4096 },
    });
    try {
      const r = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
      assert.equal(r.status, 200);
      let received = 0;
      await new Promise<void>((resolve) => {
        r.socket.on('data', (c: Buffer) => {
          received += c.length;
        });
        r.socket.on('close', () => resolve());
        r.socket.write('GET /big HTTP/1.1\r\nHost: up.test\r\n\r\n');
      });
      assert.ok(received < 65_536, `received ${received}`);
    } finally {
      await proxy.close();
      await up.close();
    }
    const tunnel = proxy.records().find((rec) => rec.proxyType === 'connect');
    assert.equal(tunnel?.end, 'byte_budget_exceeded');
    assert.equal(tunnel?.alert, true);
    assert.equal(tunnel?.level, 'warn');
  });
});

/** A client that sends `head` and leaves 50 ms later, while `dialLate` is still dialling. */
function sendAndLeave(port: number, head: string): void {
  const client = connect(port, '127.0.0.1', () => client.write(head));
  client.on('error', () => undefined);
  setTimeout(() => client.destroy(), 50);
}

/** Dials the checked address, but only 200 ms later: after a client that leaves at 50 ms has gone. */
const dialLate: ConnectFn = (options) => {
  const socket = new Socket({ allowHalfOpen: options.allowHalfOpen });
  setTimeout(() => socket.connect({ host: options.host, port: options.port, family: options.family }), 200);
  return socket;
};

test('a client that leaves while its tunnel is being dialled is audited as client_gone (499), not as a malformed request', async () => {
  const dir = tempDir();
  const up = await startHttpUpstream();
  const proxy = await startProxy(dir, localGrant('up.test', up.port), { connect: dialLate });
  try {
    sendAndLeave(proxy.port, connectRequest(`up.test:${up.port}`));
    await eventually(() => proxy.records().length > 0);
    const [record] = proxy.records();
    assert.equal(record?.code, 'GW_CLIENT_CANCELLED');
    assert.equal(record?.reason, 'client_gone');
    assert.equal(record?.allow, false);
  } finally {
    await proxy.close();
    await up.close();
    dir.remove();
  }
});

test('an absolute-form request whose client leaves while the upstream is dialled is audited as client_gone, and the stop does not wait on it', async () => {
  const dir = tempDir();
  const up = await startHttpUpstream();
  const proxy = await startProxy(dir, localGrant('up.test', up.port), { connect: dialLate });
  let stopped = false;
  try {
    sendAndLeave(proxy.port, `GET http://up.test:${up.port}/ HTTP/1.1\r\nHost: up.test:${up.port}\r\n\r\n`);
    // Before the fix the attempt stayed open on the dialled connection (the upstream's idle timeout, 5 min by
    // default): no record, and the stop waited its grace and then on that connection.
    await eventually(() => proxy.records().length > 0);
    const [record] = proxy.records();
    assert.equal(record?.code, 'GW_CLIENT_CANCELLED');
    assert.equal(record?.reason, 'client_gone');
    assert.equal(up.hits, 0);
    const started = Date.now();
    await proxy.close();
    stopped = true;
    assert.ok(Date.now() - started < 2_000, `stopped after ${Date.now() - started} ms`);
  } finally {
    // The upstream first: before the fix, closing it was what ended the attempt.
    await up.close();
    if (!stopped) await proxy.close();
    dir.remove();
  }
});
