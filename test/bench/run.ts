// `npm run bench`: Portcullis measured side by side with HAProxy, nginx, squid and a plain Node proxy on
// the same certificates, tokens, upstreams and checks (issue #6). See docs/performance.md.
//
//   npm run bench -- --duration 10s --rounds 5 --scenarios S1,HS,S3 --peers portcullis,haproxy --profile
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs, USAGE } from './args.js';
import { runH2load } from './h2load.js';
import { createMaterial, EGRESS_HOST, type Material } from './material.js';
import { fastifyPeer } from './peers/fastify.js';
import { haproxy } from './peers/haproxy.js';
import { nginx } from './peers/nginx.js';
import { nodeUndici } from './peers/node-undici.js';
import { portcullisDriver, startPortcullis, type GatewayBuild } from './peers/portcullis.js';
import { squid } from './peers/squid.js';
import { LOAD_CORE, hasCommand, measure, nodeBinary, pinned, pinningNote, runToEnd, settle, type Usage } from './proc.js';
import { profileMarkdown, summarizeProfile, type Window } from './profile.js';
import { baseComparison, int, markdownTable, perCore, summarize, type Sample } from './report.js';
import { measureResumption } from './resumption.js';
import { sanity, upstreamDemandsClientCert } from './sanity.js';
import {
  H2LOAD,
  roundGroups,
  roundOrder,
  SCENARIOS,
  type GatewayVariant,
  type PeerContext,
  type PeerDriver,
  type PeerName,
  type RunningPeer,
  type ScenarioId,
} from './scenarios.js';
import { startUpstreams } from './upstream.js';
import { CONNECTIONS, runWrk, writeTokenScript, type LoadResult } from './wrk.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = path.join(ROOT, 'test/bench/results/latest.md');
const CONNECT_LOAD = fileURLToPath(new URL('./connect-load.ts', import.meta.url));
/** Every load generator stops at its duration; this also bounds the CONNECT generator by count. */
const MAX_REQUESTS_PER_RUN = 5_000_000;
/** A wait for idle proxies longer than this is logged: something kept a proxy busy after its load. */
const IDLE_WAIT_NOTE_MS = 2_000;

const { values, durationS, rounds, scenarioIds, peerNames, accessLog, workers } = parseBenchArgs(process.argv.slice(2), { node: process.execPath, out: RESULTS });
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

// --node PATH: the gateway and the Node peer run under that binary; the bench itself stays on this one.
const gatewayNode = nodeBinary(values.node);

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Compiled gateway for realistic figures; falls back to tsx (and says so) when the build fails. */
function chooseBuild(): GatewayBuild {
  if (values['no-build']) return fs.existsSync(path.join(ROOT, 'dist/gateway/cli.js')) ? 'dist' : 'tsx';
  log('building the gateway (npm run build)…');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status === 0) return 'dist';
  log(`npm run build failed; Portcullis runs from the sources through tsx (slower start, same code):\n${build.stdout}${build.stderr}`);
  return 'tsx';
}

async function loadOnce(scenario: ScenarioId, peer: RunningPeer, m: Material, tokenScript: string, seconds: number, egressTargetPort: number): Promise<LoadResult> {
  const load = SCENARIOS[scenario].load;
  if (load.kind === 'h2load') {
    return runH2load({ port: peer.h2Port!, path: load.path, durationS: seconds, dir: m.dir, ...(load.jwt ? { tokenFile: m.jwt.ES256.tokens } : {}) });
  }
  if (load.kind === 'wrk') {
    return runWrk({
      port: peer.ingressPort!,
      path: load.path,
      durationS: seconds,
      tokenScript,
      ...(load.tokens ? { tokenFile: load.tokens(m) } : {}),
      ...(load.connectionClose ? { connectionClose: true } : {}),
    });
  }
  const settings = {
    proxyPort: peer.egressPort!,
    host: EGRESS_HOST,
    port: egressTargetPort,
    caPem: m.caPem,
    durationS: seconds,
    concurrency: CONNECTIONS,
    newTunnelPerRequest: load.newTunnelPerRequest,
    maxRequests: MAX_REQUESTS_PER_RUN,
  };
  const { code, stdout, stderr } = await runToEnd(
    pinned(LOAD_CORE, [process.execPath, '--import', 'tsx', CONNECT_LOAD]),
    (seconds + 30) * 1000,
    { ...process.env, BENCH_CONNECT_LOAD: JSON.stringify(settings) },
  );
  if (code !== 0) throw new Error(`connect load generator exited ${code}: ${stderr}`);
  return JSON.parse(stdout) as LoadResult;
}

async function main(): Promise<number> {
  // The orchestrator (and so the Node upstream fallback) stays off the proxy's core.
  if (hasCommand('taskset')) spawnSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)]);
  const build = peerNames.includes('portcullis') ? chooseBuild() : 'dist';
  const drivers: Record<PeerName, PeerDriver> = {
    portcullis: portcullisDriver(build, workers),
    'portcullis-base': portcullisDriver('dist', workers, values.base),
    haproxy,
    nginx,
    'node-undici': nodeUndici,
    fastify: fastifyPeer,
    squid,
  };

  const missingPackages = new Set<string>();
  const missingNpm = new Set<string>();
  const usable: PeerDriver[] = [];
  for (const name of peerNames) {
    const driver = drivers[name];
    const missing = driver.missing();
    if (missing.length) {
      log(`skipping ${name}: missing ${missing.join(', ')}`);
      for (const p of driver.packages) missingPackages.add(p);
      for (const p of driver.npmPackages ?? []) missingNpm.add(p);
    } else usable.push(driver);
  }
  const generators = [
    { kind: 'wrk', command: 'wrk', pkg: 'wrk' },
    { kind: 'h2load', command: 'h2load', pkg: 'nghttp2-client' },
  ] as const;
  const absent = new Set<string>();
  for (const g of generators) {
    if (!scenarioIds.some((s) => SCENARIOS[s].load.kind === g.kind) || hasCommand(g.command)) continue;
    missingPackages.add(g.pkg);
    absent.add(g.kind);
    log(`skipping the ${scenarioIds.filter((s) => SCENARIOS[s].load.kind === g.kind).join(', ')} scenarios: ${g.command} is not installed`);
  }
  if (missingPackages.size) log(`to bench every peer: apt-get install -y ${[...missingPackages].sort().join(' ')}`);
  if (missingNpm.size) log(`not measured: the npm packages ${[...missingNpm].join(', ')} are not installed (not dependencies of the project)`);
  const scenarios = scenarioIds.filter((s) => !absent.has(SCENARIOS[s].load.kind));

  log(`${os.cpus().length} cores; Node peers on ${gatewayNode.version}; ${pinningNote()}; ${durationS}s × ${rounds} rounds; access logs ${accessLog ? 'on (to /dev/null)' : 'off'}`);
  const material = await createMaterial();
  const started: RunningPeer[] = [];
  let stopUpstreams: (() => Promise<void>) | undefined;
  let stopSink: (() => Promise<void>) | undefined;
  const interrupted = () => {
    void Promise.allSettled(started.map((p) => p.stop())).then(() => Promise.allSettled([stopUpstreams?.(), stopSink?.()])).finally(() => {
      material.remove();
      process.exit(130);
    });
  };
  process.once('SIGINT', interrupted);
  try {
    const upstreams = await startUpstreams(material);
    stopUpstreams = upstreams.stop;
    log(`upstreams: ${upstreams.kind}`);
    const upstreamProblem = await upstreamDemandsClientCert(material, upstreams);
    if (upstreamProblem) throw new Error(upstreamProblem);
    const sink = scenarios.some((s) => SCENARIOS[s].variant?.startsWith('trace')) ? await startOtlpSink() : undefined;
    stopSink = sink?.stop;
    const ctx: PeerContext = { material, upstreams, accessLog, node: gatewayNode.binary, ...(sink ? { otlpUrl: sink.url } : {}) };
    const tokenScript = writeTokenScript(material.dir);

    // One instance per peer, plus one per gateway variant (tracing, audit) its scenarios need.
    const running = new Map<string, RunningPeer>();
    const instanceOf = (driver: PeerDriver, scenario: ScenarioId) => running.get(instanceKey(driver.name, SCENARIOS[scenario].variant))!;
    const startAll = async () => {
      for (const driver of usable) {
        const variants = new Set(scenarios.filter((s) => driver.scenarios.includes(s)).map((s) => SCENARIOS[s].variant));
        for (const variant of [undefined, ...[...variants].filter((v) => v !== undefined)]) {
          const peer = await driver.start(ctx, variant);
          started.push(peer);
          running.set(instanceKey(driver.name, variant), peer);
          log(`started ${instanceKey(driver.name, variant)} (pid ${peer.pid})`);
        }
      }
    };
    await startAll();

    const refused: { scenario: ScenarioId; peer: PeerName; failures: string[] }[] = [];
    const measured: { scenario: ScenarioId; driver: PeerDriver }[] = [];
    for (const scenario of scenarios) {
      for (const driver of usable) {
        if (!driver.scenarios.includes(scenario)) continue;
        const failures = await sanity(scenario, instanceOf(driver, scenario), material, upstreams, !driver.caveats?.[scenario]);
        if (failures.length) {
          log(`REFUSED ${driver.name} ${scenario}: ${failures.join('; ')}`);
          refused.push({ scenario, peer: driver.name, failures });
        } else measured.push({ scenario, driver });
      }
    }

    const warmS = Math.min(3, durationS);
    const warmUp = async () => {
      for (const { scenario, driver } of measured) {
        log(`warm-up ${scenario} ${driver.name} (${warmS}s)`);
        await loadOnce(scenario, instanceOf(driver, scenario), material, tokenScript, warmS, upstreams.egressPort);
      }
    };
    await warmUp();

    const samples: Sample[] = [];
    for (let round = 1; round <= rounds; round++) {
      if (values.fresh && round > 1) {
        // Two processes of one build can differ by 10-20 % for their whole life (code and heap placement): fresh
        // processes each round let the rounds sample that spread instead of keeping one draw of it.
        for (const peer of started.splice(0)) await peer.stop();
        await startAll();
        await warmUp();
      }
      // Changing the order each round spreads any drift (thermal, background) over every peer and variant. With
      // --paired each comparison's loads run at once, sharing the proxy core moment by moment, so what slows the
      // machine down for a while (a busy neighbour, the load generator's swings) slows all of them alike.
      const batches = values.paired ? roundGroups(measured, round) : roundOrder(measured, round).map((item) => [item]);
      for (const batch of batches) {
        const waited = await settle(started.map((p) => p.pid));
        if (waited > IDLE_WAIT_NOTE_MS) log(`waited ${(waited / 1000).toFixed(1)} s for the proxies to go idle`);
        const loaded = await Promise.all(
          batch.map(async ({ scenario, driver }) => {
            const peer = instanceOf(driver, scenario);
            const { result, usage } = await measure(peer.pid, () => loadOnce(scenario, peer, material, tokenScript, durationS, upstreams.egressPort));
            return { scenario, peer: driver.name, round, load: result, usage } satisfies Sample;
          }),
        );
        for (const sample of loaded) {
          samples.push(sample);
          const result = sample.load;
          log(`round ${round} ${sample.scenario} ${sample.peer}: ${Math.round(result.rps)} req/s, ${Math.round(perCore(sample))} per core, p99 ${result.p99Ms.toFixed(2)} ms${result.p999Ms === undefined ? '' : `, p99.9 ${result.p999Ms.toFixed(2)} ms`}${result.errors ? `, ${result.errors} errors` : ''}`);
        }
      }
    }
    const resumption: string[] = [];
    for (const { driver } of measured.filter((m) => m.scenario === 'HS')) {
      const peer = instanceOf(driver, 'HS');
      try {
        const r = await measureResumption(peer.pid, peer.ingressPort!, material.caPem, durationS);
        resumption.push(`| ${driver.name} | ${int(r.fullPerCore)} | ${int(r.resumedPerCore)} | ${(r.resumedShare * 100).toFixed(0)} % | ${r.ratio.toFixed(2)}× |`);
      } catch (err) {
        resumption.push(`| ${driver.name} | failed: ${(err as Error).message.split('\n')[0]} | | | |`);
      }
      log(`resumption ${resumption.at(-1)}`);
    }
    for (const peer of started.splice(0)) await peer.stop();

    let profile = '';
    if (values.profile && usable.some((d) => d.name === 'portcullis')) profile = await profileScenario(values['profile-scenario'] as ScenarioId, ctx, build, tokenScript);

    const cells = summarize(samples, (scenario, peer) => drivers[peer].caveats?.[scenario]);
    const table = markdownTable(cells, refused, scenarios, peerNames);
    const header = [
      `Portcullis bench, ${new Date().toISOString().slice(0, 10)}: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, gateway and Node peer on Node ${gatewayNode.version}${gatewayNode.binary === process.execPath ? '' : ` (${gatewayNode.binary})`}.`,
      `${durationS}s × ${rounds} rounds (medians; RSS = peak), one proxy process/thread pinned to core 1; load generator and upstream (${upstreams.kind}) on core 0.`,
      ...(values.paired ? ['Paired (`--paired`): the peers and variants of one comparison were loaded at the same time, sharing core 1 (and their load generators core 0).'] : []),
      `wrk -t1 -c${CONNECTIONS} keep-alive over TLS 1.3, ECDSA P-256 certificates; S4 through a Node CONNECT load generator (${CONNECTIONS} workers); S*-h2 from ${H2LOAD.processes} h2load processes × -c${H2LOAD.connections} -m${H2LOAD.streams} (ALPN h2).`,
      `"per core" = requests per second of the proxy's own CPU (utime+stime of its process tree). Access logs ${accessLog ? 'on, to /dev/null' : 'off'}. Portcullis: ${build === 'dist' ? 'compiled build' : 'sources through tsx'}${workers > 1 ? `, ${workers} worker processes` : ''}.`,
        ...(missingPackages.size ? [`Not installed, so not measured: ${[...missingPackages].join(', ')} (apt-get install -y ${[...missingPackages].sort().join(' ')}).`] : []),
      ...(missingNpm.size ? [`Not measured: the npm packages ${[...missingNpm].join(', ')} are not installed (the fastify peer needs them; they are not dependencies of the project).`] : []),
    ].join('\n');
    const scenarioList = scenarios.map((s) => `- **${s}**: ${SCENARIOS[s].title}; baseline ${SCENARIOS[s].baseline}`).join('\n');
    const resumptionTable = resumption.length
      ? [
          '',
          `TLS session resumption (new connection + GET /s1 per request, 16 at a time, without and with the previous session's ticket, ${durationS}s each; connections per second of the proxy's CPU):`,
          '',
          '| peer | full handshakes per core | resumed per core | resumed share | resumed cheaper by |',
          '|---|---:|---:|---:|---:|',
          ...resumption,
        ].join('\n')
      : '';
    const comparison = baseComparison(samples, scenarios);
    const baseTable = comparison ? `\nThis build against \`--base\` (${values.base}), round by round:\n\n${comparison}\n` : '';
    const markdown = `${header}\n\n${table}\n${baseTable}${resumptionTable}\n\n${scenarioList}\n${profile ? `\n### Portcullis ${values['profile-scenario']} CPU profile\n\n${profile}\n` : ''}`;
    fs.mkdirSync(path.dirname(values.out), { recursive: true });
    fs.writeFileSync(values.out, markdown);
    console.log(markdown);
    log(`written to ${path.relative(process.cwd(), values.out)}`);
    return 0;
  } finally {
    process.off('SIGINT', interrupted);
    await Promise.allSettled(started.map((p) => p.stop()));
    await stopUpstreams?.();
    await stopSink?.();
    material.remove();
  }
}

function instanceKey(name: PeerName, variant: GatewayVariant | undefined): string {
  return variant ? `${name}/${variant}` : name;
}

/**
 * The OTLP/HTTP collector of the tracing scenarios, in this process (the load core): it reads each export request
 * whole and answers 200 with an empty ExportTraceServiceResponse, as a collector does, and counts what arrived.
 */
async function startOtlpSink(): Promise<{ url: string; stop: () => Promise<void> }> {
  let exports = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    stop: async () => {
      log(`OTLP sink: ${exports} export requests, ${(bytes / 2 ** 20).toFixed(1)} MB`);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One run of a scenario against a separate Portcullis started with --cpu-prof; the profile is written when it exits. */
async function profileScenario(id: ScenarioId, ctx: PeerContext, build: GatewayBuild, tokenScript: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-profile-'));
  // The scenario's gateway variant too: `--profile-scenario S3-trace1` profiles a gateway with tracing on.
  const variant = SCENARIOS[id].variant;
  const peer = await startPortcullis(ctx, build, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`], ...(variant ? { variant } : {}) });
  let usage: Usage;
  let load: LoadResult;
  let window: Window;
  try {
    await loadOnce(id, peer, ctx.material, tokenScript, Math.min(3, durationS), ctx.upstreams.egressPort);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    ({ result: load, usage } = await measure(peer.pid, () => loadOnce(id, peer, ctx.material, tokenScript, durationS, ctx.upstreams.egressPort)));
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
  } finally {
    await peer.stop();
  }
  // On Node ≥ 22.15 `run` re-executes itself with its heap flags (heap-flags.ts), and the process before the execve
  // leaves a profile of its start-up too: the run's own profile is the later one.
  const file = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, at: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at)[0]?.f;
  if (!file) return 'no profile was written (the gateway did not exit cleanly on SIGTERM)';
  const kept = path.join(os.tmpdir(), `portcullis-${id.toLowerCase()}-${Date.now()}.cpuprofile`);
  fs.renameSync(path.join(dir, file), kept);
  fs.rmSync(dir, { recursive: true, force: true });
  log(`profile kept at ${kept} (open it in Chrome DevTools or speedscope for a flame graph)`);
  return `${profileMarkdown(summarizeProfile(kept, window))}\n\nCPU during the profiled run: ${usage.cpuSeconds.toFixed(1)} s for ${int(load.requests)} requests, ${int(perCore({ load, usage }))} per core (the profiler itself adds a few %). Flame graph: \`${kept}\`.`;
}

process.exitCode = await main();
