// `npm run bench`: Portcullis measured side by side with HAProxy, nginx, squid and a plain Node proxy on
// the same certificates, tokens, upstreams and checks (issue #6). See docs/performance.md.
//
//   npm run bench -- --duration 10s --rounds 5 --scenarios S1,HS,S3 --peers portcullis,haproxy --profile
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createMaterial, EGRESS_HOST, type Material } from './material.js';
import { haproxy } from './peers/haproxy.js';
import { nginx } from './peers/nginx.js';
import { nodeUndici } from './peers/node-undici.js';
import { portcullisDriver, startPortcullis, type GatewayBuild } from './peers/portcullis.js';
import { squid } from './peers/squid.js';
import { LOAD_CORE, hasCommand, measure, nodeBinary, pinned, pinningNote, runToEnd, type Usage } from './proc.js';
import { profileMarkdown, summarizeProfile, type Window } from './profile.js';
import { int, markdownTable, parseDuration, summarize, type Sample } from './report.js';
import { measureResumption } from './resumption.js';
import { sanity, upstreamDemandsClientCert } from './sanity.js';
import { PEER_NAMES, SCENARIOS, SCENARIO_IDS, type PeerContext, type PeerDriver, type PeerName, type RunningPeer, type ScenarioId } from './scenarios.js';
import { startUpstreams } from './upstream.js';
import { CONNECTIONS, runWrk, writeTokenScript, type LoadResult } from './wrk.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS = path.join(ROOT, 'test/bench/results/latest.md');
const CONNECT_LOAD = fileURLToPath(new URL('./connect-load.ts', import.meta.url));
/** Every load generator stops at its duration; this also bounds the CONNECT generator by count. */
const MAX_REQUESTS_PER_RUN = 5_000_000;

function parseList<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`--${flag}: unknown ${item} (known: ${allowed.join(', ')})`);
  return items as T[];
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10s' },
    rounds: { type: 'string', default: '5' },
    scenarios: { type: 'string', default: SCENARIO_IDS.join(',') },
    peers: { type: 'string', default: PEER_NAMES.filter((p) => p !== 'portcullis-base').join(',') },
    base: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-scenario': { type: 'string', default: 'S3' },
    'access-log': { type: 'string', default: 'on' },
    'no-build': { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    node: { type: 'string', default: process.execPath },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm run bench -- [--duration 10s] [--rounds 5] [--scenarios ${SCENARIO_IDS.join(',')}]
                       [--peers ${PEER_NAMES.join(',')}] [--profile [--profile-scenario S3]] [--access-log on|off] [--no-build] [--workers N] [--base DIR] [--node PATH] [--out FILE]`);
  process.exit(0);
}

const durationS = parseDuration(values.duration);
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${values.rounds}`);
const scenarioIds = parseList('scenarios', values.scenarios, SCENARIO_IDS);
const peerNames = parseList('peers', values.peers, PEER_NAMES);
// --base DIR: that checkout's compiled gateway joins as `portcullis-base`, measured in the same rounds.
if (values.base !== undefined && !peerNames.includes('portcullis-base')) peerNames.splice(1, 0, 'portcullis-base');
if (peerNames.includes('portcullis-base') && values.base === undefined) throw new Error('--peers portcullis-base needs --base DIR (another checkout, built)');
const accessLog = values['access-log'] !== 'off';
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers: expected a positive integer, got ${values.workers}`);

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
    squid,
  };

  const missingPackages = new Set<string>();
  const usable: PeerDriver[] = [];
  for (const name of peerNames) {
    const driver = drivers[name];
    const missing = driver.missing();
    if (missing.length) {
      log(`skipping ${name}: missing ${missing.join(', ')}`);
      for (const p of driver.packages) missingPackages.add(p);
    } else usable.push(driver);
  }
  const needsWrk = scenarioIds.some((s) => SCENARIOS[s].load.kind === 'wrk');
  const haveWrk = hasCommand('wrk');
  if (needsWrk && !haveWrk) {
    missingPackages.add('wrk');
    log('skipping the ingress scenarios: wrk is not installed');
  }
  if (missingPackages.size) log(`to bench every peer: apt-get install -y ${[...missingPackages].sort().join(' ')}`);
  const scenarios = scenarioIds.filter((s) => haveWrk || SCENARIOS[s].load.kind !== 'wrk');

  log(`${os.cpus().length} cores; Node peers on ${gatewayNode.version}; ${pinningNote()}; ${durationS}s × ${rounds} rounds; access logs ${accessLog ? 'on (to /dev/null)' : 'off'}`);
  const material = await createMaterial();
  const started: RunningPeer[] = [];
  let stopUpstreams: (() => Promise<void>) | undefined;
  const interrupted = () => {
    void Promise.allSettled(started.map((p) => p.stop())).then(() => stopUpstreams?.()).finally(() => {
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
    const ctx: PeerContext = { material, upstreams, accessLog, node: gatewayNode.binary };
    const tokenScript = writeTokenScript(material.dir);

    const running = new Map<PeerName, RunningPeer>();
    for (const driver of usable) {
      const peer = await driver.start(ctx);
      started.push(peer);
      running.set(driver.name, peer);
      log(`started ${driver.name} (pid ${peer.pid})`);
    }

    const refused: { scenario: ScenarioId; peer: PeerName; failures: string[] }[] = [];
    const measured: { scenario: ScenarioId; driver: PeerDriver }[] = [];
    for (const scenario of scenarios) {
      for (const driver of usable) {
        if (!driver.scenarios.includes(scenario)) continue;
        const failures = await sanity(scenario, running.get(driver.name)!, material, upstreams, !driver.caveats?.[scenario]);
        if (failures.length) {
          log(`REFUSED ${driver.name} ${scenario}: ${failures.join('; ')}`);
          refused.push({ scenario, peer: driver.name, failures });
        } else measured.push({ scenario, driver });
      }
    }

    const warmS = Math.min(3, durationS);
    for (const { scenario, driver } of measured) {
      log(`warm-up ${scenario} ${driver.name} (${warmS}s)`);
      await loadOnce(scenario, running.get(driver.name)!, material, tokenScript, warmS, upstreams.egressPort);
    }

    const samples: Sample[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const scenario of scenarios) {
        const here = measured.filter((m) => m.scenario === scenario);
        // Rotating the order each round spreads any drift (thermal, background) over every peer.
        const order = here.map((_, i) => here[(i + round) % here.length]!);
        for (const { driver } of order) {
          const peer = running.get(driver.name)!;
          const { result, usage } = await measure(peer.pid, () => loadOnce(scenario, peer, material, tokenScript, durationS, upstreams.egressPort));
          samples.push({ scenario, peer: driver.name, load: result, usage });
          log(`round ${round} ${scenario} ${driver.name}: ${Math.round(result.rps)} req/s, ${Math.round(result.requests / Math.max(usage.cpuSeconds, 0.01))} per core, p99 ${result.p99Ms.toFixed(2)} ms${result.p999Ms === undefined ? '' : `, p99.9 ${result.p999Ms.toFixed(2)} ms`}${result.errors ? `, ${result.errors} errors` : ''}`);
        }
      }
    }
    const resumption: string[] = [];
    for (const { driver } of measured.filter((m) => m.scenario === 'HS')) {
      const peer = running.get(driver.name)!;
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
      `wrk -t1 -c${CONNECTIONS} keep-alive over TLS 1.3, ECDSA P-256 certificates; S4 through a Node CONNECT load generator (${CONNECTIONS} workers).`,
      `"per core" = requests per second of the proxy's own CPU (utime+stime of its process tree). Access logs ${accessLog ? 'on, to /dev/null' : 'off'}. Portcullis: ${build === 'dist' ? 'compiled build' : 'sources through tsx'}${workers > 1 ? `, ${workers} worker processes` : ''}.`,
      ...(missingPackages.size ? [`Not installed, so not measured: ${[...missingPackages].join(', ')} (apt-get install -y ${[...missingPackages].sort().join(' ')}).`] : []),
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
    const markdown = `${header}\n\n${table}\n${resumptionTable}\n\n${scenarioList}\n${profile ? `\n### Portcullis ${values['profile-scenario']} CPU profile\n\n${profile}\n` : ''}`;
    fs.mkdirSync(path.dirname(values.out), { recursive: true });
    fs.writeFileSync(values.out, markdown);
    console.log(markdown);
    log(`written to ${path.relative(process.cwd(), values.out)}`);
    return 0;
  } finally {
    process.off('SIGINT', interrupted);
    await Promise.allSettled(started.map((p) => p.stop()));
    await stopUpstreams?.();
    material.remove();
  }
}

/** One run of a scenario against a separate Portcullis started with --cpu-prof; the profile is written when it exits. */
async function profileScenario(id: ScenarioId, ctx: PeerContext, build: GatewayBuild, tokenScript: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-profile-'));
  const peer = await startPortcullis(ctx, build, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  let usage: Usage;
  let window: Window;
  try {
    await loadOnce(id, peer, ctx.material, tokenScript, Math.min(3, durationS), ctx.upstreams.egressPort);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    ({ usage } = await measure(peer.pid, () => loadOnce(id, peer, ctx.material, tokenScript, durationS, ctx.upstreams.egressPort)));
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
  } finally {
    await peer.stop();
  }
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return 'no profile was written (the gateway did not exit cleanly on SIGTERM)';
  const kept = path.join(os.tmpdir(), `portcullis-${id.toLowerCase()}-${Date.now()}.cpuprofile`);
  fs.renameSync(path.join(dir, file), kept);
  fs.rmSync(dir, { recursive: true, force: true });
  log(`profile kept at ${kept} (open it in Chrome DevTools or speedscope for a flame graph)`);
  return `${profileMarkdown(summarizeProfile(kept, window))}\n\nCPU during the profiled run: ${usage.cpuSeconds.toFixed(1)} s (the profiler itself adds a few %). Flame graph: \`${kept}\`.`;
}

process.exitCode = await main();
