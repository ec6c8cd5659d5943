// The audit file, line by line: one record per attempt, denials written at decision time, accepted tunnels when
// they close, and nothing lost when the gateway shuts down while a tunnel is still open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRequest, curl, eventually, rawRequest, startHttpUpstream, startProxy, tempDir } from './harness.js';

test('allowed, denied and cut-at-shutdown attempts each leave exactly one complete record', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const up = await startHttpUpstream();
  const proxy = await startProxy(dir, {
    sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
    allow: [
      { name: 'up', identities: ['local'], hosts: ['up.test'], ports: [up.port] },
      { name: 'shadow', identities: ['local'], hosts: ['listed.test'], mode: 'report' },
    ],
    staticHosts: [
      { host: 'up.test', addresses: ['127.0.0.1'] },
      { host: 'unlisted.test', addresses: ['127.0.0.1'] },
    ],
    deny: [{ name: 'never', hosts: ['*.forbidden.test'] }],
    addressGuard: { allowAddresses: ['127.0.0.1'] },
    limits: { shutdownGraceMs: 200 },
  });
  let tunnelClosed = false;
  try {
    // 1. allowed absolute-form HTTP
    const ok = await curl(['-x', `http://127.0.0.1:${proxy.port}`, `http://up.test:${up.port}/a`]);
    assert.equal(ok.code, 0, ok.stderr);
    // 2. denied by a global deny rule (written at decision time)
    const denied = await rawRequest(proxy.port, connectRequest('api.forbidden.test:443'));
    assert.equal(denied.status, 403);
    await eventually(() => proxy.records().length === 2);
    // 3. report mode: an unlisted destination is allowed and marked wouldDeny
    const report = await rawRequest(proxy.port, connectRequest(`unlisted.test:${up.port}`));
    assert.equal(report.status, 200);
    report.socket.end();
    // 4. a tunnel still open when the gateway shuts down
    const tunnel = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
    assert.equal(tunnel.status, 200);
    const reply = await new Promise<string>((resolve) => {
      tunnel.socket.once('data', (c: Buffer) => resolve(c.toString()));
      tunnel.socket.write('GET /t HTTP/1.1\r\nHost: up.test\r\n\r\n');
    });
    assert.match(reply, /hello from upstream/);
    tunnel.socket.on('close', () => {
      tunnelClosed = true;
    });
    await eventually(() => proxy.records().length === 3);
  } finally {
    const started = Date.now();
    await proxy.close();
    assert.ok(Date.now() - started < 2_000, 'shutdown is bounded by shutdownGraceMs');
    await up.close();
  }
  await eventually(() => tunnelClosed);

  const lines = proxy.records();
  assert.equal(lines.length, 4, JSON.stringify(lines, null, 1));
  for (const line of lines) {
    assert.equal(line.event, 'EGRESS_DECISION');
    assert.equal(typeof line.time, 'string');
    assert.match(String(line.requestId), /^[0-9a-f-]{36}$/);
    assert.equal(line.identity, 'local');
    assert.equal(line.identityKind, 'source');
    assert.equal(typeof line.durationMs, 'number');
  }
  const [http, deny, report, cut] = lines;
  assert.deepEqual(
    { proxyType: http?.proxyType, host: http?.host, port: http?.port, address: http?.address, allow: http?.allow, reason: http?.reason, rule: http?.rule, status: http?.status },
    { proxyType: 'http', host: 'up.test', port: up.port, address: '127.0.0.1', allow: true, reason: 'allowed_by_rule', rule: 'up', status: 200 },
  );
  assert.equal(http?.bytesOut, 'hello from upstream'.length);
  assert.deepEqual(
    { proxyType: deny?.proxyType, host: deny?.host, port: deny?.port, allow: deny?.allow, reason: deny?.reason, rule: deny?.rule, code: deny?.code },
    { proxyType: 'connect', host: 'api.forbidden.test', port: 443, allow: false, reason: 'denied_by_rule', rule: 'never', code: 'GW_EGRESS_DENIED' },
  );
  assert.equal(deny?.address, undefined, 'a policy denial never resolves the name');
  assert.deepEqual(
    { host: report?.host, allow: report?.allow, reason: report?.reason, rule: report?.rule, wouldDeny: report?.wouldDeny },
    { host: 'unlisted.test', allow: true, reason: 'dry_run_would_deny', rule: 'shadow', wouldDeny: true },
  );
  assert.deepEqual(
    { proxyType: cut?.proxyType, host: cut?.host, allow: cut?.allow, end: cut?.end },
    { proxyType: 'connect', host: 'up.test', allow: true, end: 'shutdown' },
  );
  assert.equal(cut?.bytesIn, 'GET /t HTTP/1.1\r\nHost: up.test\r\n\r\n'.length);
  assert.ok(Number(cut?.bytesOut) > 0);
});
