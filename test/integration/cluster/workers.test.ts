// Multi-process mode, run as a user would: the real CLI with `--workers 2` on a config file (the development PKI,
// demo backend and token issuer of the embedded defaults, plus an in-memory rate limit and a policy to flip), real
// TLS on 127.0.0.1, the admin plane's aggregated metrics to tell the workers apart, signals to reload and stop.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { embeddedConfig, startCluster, type ClusterRun } from '../../helpers/cluster.js';
import { request } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';
import { assertPromtoolAccepts } from '../../helpers/promtool.js';

describe('portcullis run --workers 2', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-'));
  const configFile = path.join(stateDir, 'portcullis.yaml');
  let run: ClusterRun;
  let primary: ChildProcess;
  let exit: Promise<number | null>;
  let edge: number;
  let admin: string;
  let caPem: string;
  /** The embedded config with a `limited` route (10 requests/min per client) and a `flip` route whose policy tests change. */
  let writeConfig: (flip: 'ALLOW' | 'DENY' | 'INVALID') => void;

  const logLines = () => run.logLines();
  const edgePids = () => run.edgePids();
  const metrics = async () => (await fetch(`${admin}/metrics`)).text();
  const perWorker = () => run.perWorker();
  const burst = (n: number, p: string) => run.burst(n, p);

  before(async () => {
    const at = await embeddedConfig(stateDir);
    ({ edge, admin, caPem } = at);
    writeConfig = (flip) => {
      const config = structuredClone(at.config);
      config.rateLimits = [{ name: 'ten', requests: 10, perSeconds: 60, key: 'client_ip' }];
      config.routes.push(
        { name: 'limited', match: { path: { prefix: '/limited' } }, upstream: 'demo', rateLimit: 'ten' },
        { name: 'flip', match: { path: { prefix: '/flip' } }, upstream: flip === 'INVALID' ? 'no-such-upstream' : 'demo' },
      );
      config.policies!.push(
        { name: 'limited', action: 'ALLOW', routes: ['limited'], rules: [{}] },
        { name: 'flip', action: flip === 'INVALID' ? 'ALLOW' : flip, routes: ['flip'], rules: [{}] },
      );
      fs.writeFileSync(configFile, stringify(config));
    };
    writeConfig('ALLOW');
    run = await startCluster(configFile, stateDir, at);
    ({ primary, exit } = run);
  });
  after(() => {
    if (primary.exitCode === null) primary.kill('SIGKILL');
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('two workers listen on the edge port; the primary is ready once both are', async () => {
    // Each process batches its log lines (up to 100 ms), so a worker's line may follow the primary's.
    const pids = await until('both workers listening', () => (edgePids().size === 2 ? edgePids() : undefined));
    assert.ok(!pids.has(primary.pid!));
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
  });

  test('connections are spread over both workers; /metrics sums them, shows each, and promtool accepts it', async (t) => {
    const [before1, before2] = await perWorker();
    for (let round = 0; round < 10; round++) {
      for (const res of await burst(20, '/public/spread')) assert.equal(res.status, 200);
      const [w1, w2] = await perWorker();
      if (w1! > before1! && w2! > before2!) break;
    }
    const [w1, w2] = await perWorker();
    assert.ok(w1! > before1! && w2! > before2!, `both workers served requests (${w1}, ${w2})`);
    const page = await metrics();
    const total = Number(/^portcullis_requests_total\{route="public",status="200",code="ok"\} (\d+)/m.exec(page)?.[1]);
    assert.equal(total, w1! + w2!);
    assertPromtoolAccepts(t, page);
  });

  test('an in-memory limit of 10 per minute holds for the machine, not per worker: 10 allowed in all', async () => {
    const [before1, before2] = await perWorker();
    const statuses: number[] = [];
    // Bursts of new connections until the kernel has given some to each worker (it usually does in the first
    // four; one run in many it sends a whole burst to one worker).
    for (let i = 0; i < 12; i++) {
      statuses.push(...(await burst(5, '/limited/x')).map((r) => r.status));
      const [w1, w2] = await perWorker();
      if (statuses.length >= 20 && w1! > before1! && w2! > before2!) break;
    }
    const [w1, w2] = await perWorker();
    console.log(`cluster rate limit: worker 1 answered ${w1! - before1!}, worker 2 ${w2! - before2!}`);
    assert.ok(w1! > before1! && w2! > before2!, 'both workers counted requests');
    assert.equal(statuses.filter((s) => s === 200).length, 10);
    assert.equal(statuses.filter((s) => s === 429).length, statuses.length - 10);
    assert.match(await metrics(), new RegExp(`^portcullis_rate_limit_hits_total\\{limit="ten"\\} ${statuses.length - 10}$`, 'm'));
  });

  test('SIGHUP with a changed policy reaches every worker; an invalid config is refused once while traffic flows', async () => {
    assert.equal((await request(edge, caPem, { path: '/flip' })).status, 200);
    writeConfig('DENY');
    primary.kill('SIGHUP');
    await until('the new policy', async () => ((await request(edge, caPem, { path: '/flip' })).status === 403 ? true : undefined));
    const [before1, before2] = await perWorker();
    for (let round = 0; round < 10; round++) {
      for (const res of await burst(20, '/flip')) assert.equal(res.status, 403);
      const [w1, w2] = await perWorker();
      if (w1! > before1! && w2! > before2!) break;
    }
    const [w1, w2] = await perWorker();
    assert.ok(w1! > before1! && w2! > before2!, 'both workers answered under the new policy');

    writeConfig('INVALID');
    primary.kill('SIGHUP');
    await until('the refusal', () => (logLines().some((l) => l.event === 'CONFIG_REJECTED') ? true : undefined));
    for (const res of await burst(20, '/flip')) assert.equal(res.status, 403);
    for (const res of await burst(10, '/public/still')) assert.equal(res.status, 200);
    await sleep(500);
    assert.equal(logLines().filter((l) => l.event === 'CONFIG_REJECTED').length, 1, 'refused once, by the primary');
    // Counted once for the machine (by the primary), not once per worker.
    const scrape = await metrics();
    assert.match(scrape, /^portcullis_config_reloads_total\{result="success"\} 1$/m);
    assert.match(scrape, /^portcullis_config_reloads_total\{result="rejected"\} 1$/m);
    assert.match(scrape, /^portcullis_config_info\{hash="[0-9a-f]{64}"\} 1$/m);
    writeConfig('DENY');
  });

  test('a killed worker is replaced and the machine is ready again', async () => {
    const [victim] = [...edgePids()];
    process.kill(victim!, 'SIGKILL');
    // Every worker that ever listened logged its pid: a third one is the replacement.
    await until('a replacement worker', () => (edgePids().size === 3 ? true : undefined));
    // The primary's line may still be in its stdout batch (up to 100 ms) when the replacement's arrives.
    await until('the restart line', () => (logLines().some((l) => l.msg === 'worker exited; restarting it' && l.pid === victim && l.signal === 'SIGKILL') ? true : undefined), 5_000);
    await until('readiness', async () => ((await fetch(`${admin}/readyz`)).status === 200 ? true : undefined));
    for (const res of await burst(20, '/public/after-crash')) assert.equal(res.status, 200);
  });

  test('SIGTERM drains every worker: requests in flight finish, the primary exits 0', async () => {
    const inFlight = Promise.all(Array.from({ length: 10 }, () => request(edge, caPem, { path: '/public/slow?delay=1500' })));
    await sleep(500);
    primary.kill('SIGTERM');
    const answers = await inFlight;
    assert.deepEqual(
      answers.map((r) => r.status),
      Array(10).fill(200),
    );
    assert.equal(await exit, 0);
  });
});

describe('the command line of docs/operations.md#several-processes-on-one-machine', () => {
  const cores = os.availableParallelism();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-doc-'));
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test('runs as written, in a folder holding portcullis.yaml: one worker per core', { skip: cores > 4 ? `${cores} cores: would start ${cores} workers` : false }, async () => {
    const doc = fs.readFileSync(path.join(import.meta.dirname, '../../../docs/operations.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Several processes on one machine'));
    const line = /^```sh\n(.*)\n```/m.exec(section)![1]!.replace(/#.*/, '').trim();
    const [command, ...args] = line.split(/\s+/);
    assert.equal(command, 'portcullis');
    assert.deepEqual(args, ['run', '-c', 'portcullis.yaml', '--workers', 'auto']);
    const at = await embeddedConfig(stateDir);
    const configFile = path.join(stateDir, 'portcullis.yaml');
    fs.writeFileSync(configFile, stringify(at.config));
    const run = await startCluster(configFile, stateDir, at, cores, args);
    try {
      await until(`${cores} workers listening`, () => (run.edgePids().size === cores ? true : undefined));
      assert.equal((await request(at.edge, at.caPem, { path: '/public/doc' })).status, 200);
      run.primary.kill('SIGTERM');
      assert.equal(await run.exit, 0);
    } finally {
      if (run.primary.exitCode === null) run.primary.kill('SIGKILL');
    }
  });
});

describe('portcullis run --workers 2 after a reload that lengthens shutdown.drainMs', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-drain-'));
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test("the primary waits for the reloaded drain, not the start's, before killing a worker", async () => {
    const at = await embeddedConfig(stateDir);
    const configFile = path.join(stateDir, 'portcullis.yaml');
    const write = (drainMs: number) => fs.writeFileSync(configFile, stringify({ ...at.config, shutdown: { drainMs } }));
    write(100);
    const run = await startCluster(configFile, stateDir, at);
    try {
      write(10_000);
      run.primary.kill('SIGHUP');
      await until('the reload', () => (run.logLines().some((l) => l.event === 'CONFIG_LOADED' && l.trigger === 'sighup') ? true : undefined));
      // Longer than the start's drain plus the primary's 5 s grace: the old bound would kill the worker serving it.
      const slow = request(at.edge, at.caPem, { path: '/public/slow?delay=6000' });
      await sleep(300);
      run.primary.kill('SIGTERM');
      assert.equal((await slow).status, 200);
      assert.equal(await run.exit, 0);
      assert.ok(!run.output().includes('killing it'), 'no worker was killed');
    } finally {
      if (run.primary.exitCode === null) run.primary.kill('SIGKILL');
    }
  });
});
