// The README's quickstart, run as a user would: the real CLI on the embedded defaults (fresh state
// folder, so the development PKI is generated), curl as the client, SIGTERM to stop.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { freePorts } from '../helpers/net.js';
import { eventually } from './egress/harness.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

describe('quickstart on the embedded defaults', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-quickstart-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  let gateway: ChildProcess;
  let port: number;
  const cli = (...args: string[]) => ['--import', 'tsx', path.join(ROOT, 'gateway/cli.ts'), ...args, '--state-dir', stateDir];
  const curl = async (...args: string[]) =>
    (await run('curl', ['-s', '--cacert', path.join(stateDir, 'pki/ca.pem'), ...args])).stdout;

  before(async () => {
    const ports = await freePorts(['edge', 'demoBackend', 'tokenIssuer', 'egress', 'admin']);
    port = ports.edge;
    env.PORTCULLIS_EDGE_PORT = String(ports.edge);
    env.PORTCULLIS_DEMO_BACKEND_PORT = String(ports.demoBackend);
    env.PORTCULLIS_TOKEN_ISSUER_PORT = String(ports.tokenIssuer);
    env.PORTCULLIS_EGRESS_PORT = String(ports.egress);
    env.PORTCULLIS_ADMIN_PORT = String(ports.admin);
    gateway = spawn(process.execPath, cli('run'), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      gateway.stdout!.on('data', (c: Buffer) => {
        out += c;
        if (/"listener":"edge"/.test(out)) resolve();
      });
      // Why it did not start is on stderr (a config error, a port in use).
      gateway.stderr!.on('data', (c: Buffer) => (out += c));
      gateway.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${out}`)));
    });
  });
  after(() => {
    if (gateway.exitCode === null) gateway.kill('SIGKILL');
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('the development PKI was generated with private keys readable only by the owner', () => {
    const mode = fs.statSync(path.join(stateDir, 'pki/gateway-key.pem')).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  test('public route: curl reaches the demo backend, which sees the gateway SPIFFE ID', async () => {
    const echo = JSON.parse(await curl(`https://localhost:${port}/public/hello`));
    assert.equal(echo.path, '/public/hello');
    assert.equal(echo.peer, 'spiffe://portcullis.dev/ns/portcullis/sa/gateway');
  });

  test('api route: 403 without a token, 200 with a minted dev token', async () => {
    const denied = JSON.parse(await curl(`https://localhost:${port}/api/orders`));
    assert.equal(denied.code, 'GW_AUTHZ_DENIED');
    const token = (await run(process.execPath, cli('token'), { cwd: ROOT, env })).stdout.trim();
    const echo = JSON.parse(await curl('-H', `Authorization: Bearer ${token}`, `https://localhost:${port}/api/orders`));
    assert.equal(echo.headers['x-user'], 'dev-user');
    const admin = JSON.parse(await curl('-H', `Authorization: Bearer ${token}`, `https://localhost:${port}/admin/users`));
    assert.equal(admin.reason, 'denied_by_policy: admin-deny/rules[0]');
    const adminToken = (await run(process.execPath, cli('token', '--claim', 'role=admin'), { cwd: ROOT, env })).stdout.trim();
    const allowed = JSON.parse(await curl('-H', `Authorization: Bearer ${adminToken}`, `https://localhost:${port}/admin/users`));
    assert.equal(allowed.path, '/admin/users');
  });

  test('egress: TLS origination to an allowlisted name; metadata and unlisted hosts refused and audited', async () => {
    const proxy = `http://127.0.0.1:${env.PORTCULLIS_EGRESS_PORT}`;
    const echo = JSON.parse(await curl('-x', proxy, 'http://demo.internal/hello'));
    assert.equal(echo.peer, 'spiffe://portcullis.dev/ns/portcullis/sa/gateway');
    const metadata = JSON.parse(await curl('-x', proxy, 'http://169.254.169.254/latest/meta-data/'));
    assert.equal(metadata.code, 'GW_EGRESS_DENIED');
    const status = await curl('-o', '/dev/null', '-w', '%{http_connect}', '-x', proxy, 'https://github.com/').catch((e: { stdout: string }) => e.stdout);
    assert.equal(status, '403');
    // The audit file is written asynchronously: the refusal can reach curl before its record reaches the file.
    const auditFile = path.join(stateDir, 'egress-audit.log');
    const lines = () => fs.readFileSync(auditFile, 'utf8').trim().split('\n');
    await eventually(() => fs.existsSync(auditFile) && lines().length >= 3);
    const audit = lines().map((l) => JSON.parse(l));
    assert.deepEqual(audit.map((r) => [r.host, r.allow]), [['demo.internal', true], ['169.254.169.254', false], ['github.com', false]]);
  });

  test('admin plane on loopback: health, readiness and metrics open; config dump and reload off without credentials', async () => {
    const admin = `http://127.0.0.1:${env.PORTCULLIS_ADMIN_PORT}`;
    const get = async (p: string, ...args: string[]) => (await run('curl', ['-s', '-w', '\n%{http_code}', ...args, admin + p])).stdout;
    assert.match(await get('/healthz'), /200$/);
    assert.match(await get('/readyz'), /200$/);
    const metrics = await get('/metrics');
    assert.match(metrics, /portcullis_requests_total\{route="public",status="200",code="ok"\} \d+/);
    assert.match(metrics, /portcullis_egress_attempts_total\{destination="github.com",decision="deny",code="GW_EGRESS_DENIED"\} 1/);
    assert.match(metrics, /portcullis_egress_attempts_total\{destination="demo.internal",decision="allow",code="ok"\} 1/);
    assert.match(await get('/config'), /(401|403|404)$/);
    assert.match(await get('/reload', '-X', 'POST'), /(401|403|404)$/);
  });

  test('SIGTERM drains and exits 0', async () => {
    const exited = new Promise<number | null>((resolve) => gateway.once('exit', (code) => resolve(code)));
    gateway.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
