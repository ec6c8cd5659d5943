// The whole config is reloaded, section by section, under load, as an operator does it: the real CLI in its own
// process, `POST /reload` on the admin plane, real TLS clients on 127.0.0.1. Thirty reloads change each section in
// turn (a listener added, moved and removed, a route, the edge certificate, the admin port, the admin token); every
// third config is broken in a different way (YAML, a reference, a port held by another process for a listener or
// for the admin plane, a missing certificate). The load on the edge listener must see no failure at all, each
// change must be seen by a new connection, each broken config must be refused whole with a located message and be
// counted in `portcullis_config_reloads_total{result="rejected"}`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { request, servedSerial, writeTestIngress, type TestIngressFiles } from '../../helpers/ingress.js';
import { keepTraffic, trafficSince } from '../../helpers/load.js';
import { freePort, freePorts, until } from '../../helpers/net.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

interface AdminReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One admin call on a new connection (an operator's curl). */
function admin(port: number, urlPath: string, token: string, method = 'GET'): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One request on a keep-alive connection (the client would reuse it), for what a drained listener answers. */
function keptAliveRequest(port: number, ca: string, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const agent = new https.Agent({ keepAlive: true, ca, servername: 'localhost' });
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: urlPath, headers: { host: 'localhost' }, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        agent.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether anything accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A second listener like the edge one (virtual host names are unique across listeners). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function listenerLike(config: Record<string, any>, name: string, port: number) {
  const listener = structuredClone(config.listeners[0]);
  listener.hosts[0].name = `${name}-host`;
  return { ...listener, name, port };
}

const metric = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

/** The parts of the config the test changes; everything else is the test ingress's config. */
interface State {
  /** Where the running admin plane listens (reloads are posted there). */
  adminPort: number;
  /** The admin port the next config names, when it moves. */
  nextAdminPort?: number;
  token: string;
  extraPort?: number;
  routeStep: number;
}

describe('whole-config reload under load (real process)', () => {
  let files: TestIngressFiles;
  let gateway: ChildProcess;
  let out = '';
  let edgePort: number;
  /** A port another process holds for the whole test: binding it must fail. */
  let taken: net.Server;
  let takenPort: number;
  const state: State = { adminPort: 0, token: '', routeStep: 0 };
  let tokens = 0;

  const newToken = () => `reload-test-token-${++tokens}-${'x'.repeat(16)}`;
  /** The config for `state`, with `edit` applied for the broken variants. */
  const render = (edit?: (config: Record<string, any>) => void): string => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const config = structuredClone(files.config);
    config.listeners[0].port = edgePort;
    if (state.extraPort !== undefined) config.listeners.push(listenerLike(config, 'extra', state.extraPort));
    config.admin = { address: '127.0.0.1', port: state.nextAdminPort ?? state.adminPort, tokenFile: 'admin-token' };
    config.reload = { watchIntervalMs: 0 };
    config.log = { level: 'warn' };
    config.routes.push({ name: 'step', match: { path: { prefix: `/step${state.routeStep}/` } }, upstream: 'echo' });
    config.policies.push({ name: 'step', action: 'ALLOW', routes: ['step'], rules: [{}] });
    edit?.(config);
    return stringify(config);
  };
  const writeConfig = (text: string) => fs.writeFileSync(files.configFile, text);
  const reload = () => admin(state.adminPort, '/reload', state.token, 'POST');
  const metrics = async () => (await admin(state.adminPort, '/metrics', state.token)).body;
  const configHash = async () => (await admin(state.adminPort, '/config', state.token)).headers['x-portcullis-config-hash'];

  before(async () => {
    files = await writeTestIngress();
    // `taken` is bound first and the gateway's two ports come from one call: otherwise `taken`, or the second port,
    // could be the first one again.
    taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as net.AddressInfo).port;
    const ports = await freePorts(['edge', 'admin']);
    edgePort = ports.edge;
    state.adminPort = ports.admin;
    state.token = newToken();
    files.writeFile('admin-token', state.token);
    writeConfig(render());
    gateway = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli.ts'), 'run', '-c', files.configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (c: Buffer) => (out += c));
    gateway.stderr!.on('data', (c: Buffer) => (out += c));
    await until('readiness', async () => ((await admin(state.adminPort, '/readyz', state.token).catch(() => undefined))?.status === 200 ? true : undefined), 60_000);
  });
  after(async () => {
    // A child already ended by a signal has a null exitCode too, and its 'exit' will not come again.
    if (gateway.exitCode === null && gateway.signalCode === null) {
      gateway.kill('SIGTERM');
      await new Promise((resolve) => gateway.once('exit', resolve));
    }
    taken.close();
    await Promise.all([files.upstream.close(), files.jwks.close()]);
    fs.rmSync(files.dir, { recursive: true, force: true });
  });

  /** Good changes, in an order that keeps the `extra` listener's story consistent; each returns its check. */
  const changes: Record<string, () => Promise<() => Promise<void>>> = {
    'listener added': async () => {
      state.extraPort = await freePort();
      return async () => assert.equal((await request(state.extraPort!, files.pki.ca.certPem)).status, 200, 'the new listener serves');
    },
    'route changed': async () => {
      const previous = state.routeStep++;
      return async () => {
        assert.equal((await request(edgePort, files.pki.ca.certPem, { path: `/step${state.routeStep}/x` })).status, 200, 'the new route serves');
        assert.equal((await request(edgePort, files.pki.ca.certPem, { path: `/step${previous}/x` })).status, 404, 'the old route is gone');
      };
    },
    'listener port moved': async () => {
      const old = state.extraPort!;
      state.extraPort = await freePort();
      // In flight on a kept-alive connection to the old port while the reload moves it.
      const slow = keptAliveRequest(old, files.pki.ca.certPem, '/public/slow?delay=800');
      await sleep(100);
      return async () => {
        assert.equal((await request(state.extraPort!, files.pki.ca.certPem)).status, 200, 'the moved listener serves on its new port');
        assert.equal(await accepts(old), false, 'its old port is closed');
        const drained = await slow;
        assert.equal(drained.status, 200, 'the request in flight on the old socket finished');
        assert.equal(drained.headers.connection, 'close', 'and its connection was closed after it');
      };
    },
    'edge certificate rotated': async () => {
      const cert = files.pki.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      files.writeFile('server-key.pem', cert.keyPem);
      files.writeFile('server.pem', cert.certPem);
      return async () => assert.equal(await servedSerial(edgePort, files.pki.ca.certPem), cert.serial.replace(/^0+/, ''), 'new connections get the new certificate');
    },
    'listener removed': async () => {
      const old = state.extraPort!;
      delete state.extraPort;
      return async () => assert.equal(await accepts(old), false, 'the removed listener no longer accepts');
    },
    'admin port moved': async () => {
      const old = state.adminPort;
      state.nextAdminPort = await freePort();
      return async () => {
        state.adminPort = state.nextAdminPort!;
        delete state.nextAdminPort;
        assert.equal((await admin(state.adminPort, '/readyz', state.token)).status, 200, 'the admin plane answers on its new port');
        assert.equal(await accepts(old), false, 'its old port is closed');
      };
    },
    'admin token rotated': async () => {
      const old = state.token;
      const token = newToken();
      files.writeFile('admin-token', token);
      return async () => {
        state.token = token;
        assert.equal((await admin(state.adminPort, '/config', token)).status, 200, 'the new token is accepted');
        assert.equal((await admin(state.adminPort, '/config', old)).status, 401, 'the old token is refused');
      };
    },
  };

  /** Broken configs; each names what its located issue must point at, and what must not have stayed bound. */
  const broken: { name: string; text: () => Promise<{ text: string; at: RegExp; closed?: number }> }[] = [
    { name: 'YAML syntax', text: async () => ({ text: `${render()}\nnot yaml: [unclosed\n`, at: /^$/ }) },
    { name: 'unknown upstream', text: async () => ({ text: render((c) => (c.routes.at(-1).upstream = 'missing')), at: /^\/routes\/\d+\/upstream$/ }) },
    {
      name: 'listener port held by another process',
      text: async () => {
        const free = await freePort();
        const text = render((c) =>
          c.listeners.push(listenerLike(c, 'probe-ok', free), listenerLike(c, 'probe-taken', takenPort)),
        );
        return { text, at: /^\/listeners\/\d+\/port$/, closed: free };
      },
    },
    {
      name: 'admin port held by another process',
      text: async () => {
        const free = await freePort();
        const text = render((c) => {
          c.listeners.push(listenerLike(c, 'probe-ok', free));
          c.admin.port = takenPort;
        });
        return { text, at: /^\/admin\/port$/, closed: free };
      },
    },
    { name: 'missing certificate', text: async () => ({ text: render((c) => (c.listeners[0].hosts[0].tls.certificate.cert = 'gone.pem')), at: /certificate\/cert$/ }) },
  ];

  test('30 reloads, each section in turn, every third broken: no request fails, every change is seen, every broken one refused', async () => {
    const load = keepTraffic({ port: edgePort, caPem: files.pki.ca.certPem });
    const kinds = Object.keys(changes);
    let applied = 0;
    let refused = 0;
    const examples: string[] = [];
    let hash = await configHash();
    let lastSuccess = metric(await metrics(), 'portcullis_config_last_reload_success_timestamp_seconds');
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 2) {
        const variant = broken[refused % broken.length]!;
        const { text, at, closed } = await variant.text();
        writeConfig(text);
        const reply = await reload();
        refused++;
        assert.equal(reply.status, 400, `${variant.name}: refused (${reply.body})`);
        const { issues } = JSON.parse(reply.body) as { issues: { file: string; path: string; line?: number; message: string }[] };
        assert.ok(Array.isArray(issues) && issues.length > 0, `${variant.name}: located issues, got ${reply.body}`);
        assert.ok(issues.some((x) => x.file === files.configFile && at.test(x.path)), `${variant.name}: an issue at ${at}, got ${reply.body}`);
        if (refused <= broken.length) examples.push(`${variant.name}: ${issues[0]!.path || `line ${issues[0]!.line}`}: ${issues[0]!.message}`);
        if (closed !== undefined) assert.equal(await accepts(closed), false, `${variant.name}: the listener bound for the refused config was closed again`);
        assert.equal(metric(await metrics(), 'portcullis_config_reloads_total{result="rejected"}'), refused);
        assert.equal(await configHash(), hash, `${variant.name}: the running config is unchanged`);
      } else {
        const kind = kinds[applied % kinds.length]!;
        const check = await changes[kind]!();
        writeConfig(render());
        const reply = await reload();
        applied++;
        assert.equal(reply.status, 200, `${kind}: applied (${reply.body})`);
        await check();
        const scrape = await metrics();
        assert.equal(metric(scrape, 'portcullis_config_reloads_total{result="success"}'), applied);
        const success = metric(scrape, 'portcullis_config_last_reload_success_timestamp_seconds');
        assert.ok(success >= lastSuccess, `${kind}: last success time moves on`);
        lastSuccess = success;
        const next = await configHash();
        assert.match(String(next), /^[0-9a-f]{64}$/);
        assert.notEqual(next, hash, `${kind}: a new config hash`);
        assert.match(scrape, new RegExp(`^portcullis_config_info\\{hash="${next}"\\} 1$`, 'm'));
        hash = next;
      }
      await trafficSince(load, load.sent, 10);
    }
    await sleep(200);
    await load.stop();
    console.log(`whole-config reload: ${load.sent} requests (half on new connections, half kept alive), ${load.failed} failed, ${applied} reloads applied, ${refused} refused`);
    for (const example of examples) console.log(`  refused: ${example}`);
    assert.equal(load.failed, 0, load.errors.slice(0, 5).join('; '));
    assert.equal(applied, 20);
    assert.equal(refused, 10);
    assert.ok(load.sent >= 300, `enough traffic (${load.sent})`);
    assert.equal(gateway.exitCode, null, `the gateway is still running: ${out.slice(-2000)}`);
  });
});
