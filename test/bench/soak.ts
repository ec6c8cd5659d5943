// Memory soak of issue #6 ("resident memory ≤ 100 MB during S3 load; no growth across a 10-minute soak"):
// one Portcullis set up exactly as the bench's S3 (TLS terminate, ES256 JWT with the 256 tokens cycled, mTLS
// upstream), pinned as the bench pins, under one long wrk run while the VmRSS of its process tree is sampled
// every second. Growth is a finding, not a failure: only a broken harness exits non-zero.
//
//   npm run bench:soak -- --duration 10m      (report in test/bench/results/soak.md)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createMaterial } from './material.js';
import { portcullisDriver } from './peers/portcullis.js';
import { LOAD_CORE, hasCommand, nodeBinary, pinningNote, rssBytes } from './proc.js';
import { int, parseDuration } from './report.js';
import { sanity, upstreamDemandsClientCert } from './sanity.js';
import { SCENARIOS, type RunningPeer } from './scenarios.js';
import { startUpstreams, type Upstreams } from './upstream.js';
import { CONNECTIONS, runWrk, writeTokenScript, type LoadResult } from './wrk.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE_S = 1;
const MB = 1024 * 1024;
/**
 * "No growth": the last window's floor (its lowest sample, what survives garbage collection) is within this share of
 * the first window's after warm-up. Peaks swing by tens of MB with the young generation and are reported, not judged.
 */
const TOLERANCE = 0.05;

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    node: { type: 'string', default: process.execPath },
    out: { type: 'string', default: path.join(ROOT, 'test/bench/results/soak.md') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('Usage: npm run bench:soak -- [--duration 10m] [--node PATH] [--out test/bench/results/soak.md]');
  process.exit(0);
}

// --node PATH: the gateway runs under that binary; the soak itself stays on this one.
const gatewayNode = nodeBinary(values.node);
const log = (line: string) => process.stderr.write(`${line}\n`);
const mb = (bytes: number) => (bytes / MB).toFixed(1);
const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;

interface Point {
  /** Seconds since the load started (nominal: every SAMPLE_S). */
  t: number;
  bytes: number;
}
interface Window {
  from: number;
  to: number;
  points: Point[];
}

/** wrk is started by runWrk, which does not expose it; it must not outlive the soak (Ctrl-C, a dead proxy). */
function stopOurWrk(): void {
  for (const task of fs.readdirSync(`/proc/${process.pid}/task`)) {
    for (const pid of fs.readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) {
      try {
        if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'wrk') process.kill(Number(pid), 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

async function main(): Promise<void> {
  const durationS = parseDuration(values.duration);
  // Three 10 s windows at least, so one is left after the warm-up third for each end of the comparison.
  if (durationS < 30) throw new Error('--duration: at least 30s');
  const driver = portcullisDriver('dist');
  // run.ts's build choice (tsx fallback) is not exported, so the soak requires the compiled build.
  if (driver.missing().length) throw new Error(`${driver.missing().join(', ')} is missing: run \`npm run build\` first`);
  if (!hasCommand('wrk')) throw new Error('wrk is not installed (apt-get install -y wrk)');
  const load = SCENARIOS.S3.load;
  if (load.kind !== 'wrk' || !load.tokens) throw new Error('S3 is expected to be a wrk scenario with tokens');

  // As run.ts: the orchestrator (and the Node upstream fallback) stays off the proxy's core.
  if (hasCommand('taskset')) spawnSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)]);
  const material = await createMaterial();
  let upstreams: Upstreams | undefined;
  let peer: RunningPeer | undefined;
  const interrupted = () => {
    stopOurWrk();
    void Promise.allSettled([peer?.stop(), upstreams?.stop()]).finally(() => {
      material.remove();
      process.exit(130);
    });
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    upstreams = await startUpstreams(material);
    const problem = await upstreamDemandsClientCert(material, upstreams);
    if (problem) throw new Error(problem);
    peer = await driver.start({ material, upstreams, accessLog: true, node: gatewayNode.binary });
    log(`${os.cpus().length} cores; ${pinningNote()}; upstreams: ${upstreams.kind}; portcullis pid ${peer.pid}`);
    // The soak means nothing if the gateway does not do S3's work (verify, authorise, re-originate).
    const failures = await sanity('S3', peer, material, upstreams, true);
    if (failures.length) throw new Error(`S3 sanity checks failed: ${failures.join('; ')}`);

    const pid = peer.pid;
    const idle = rssBytes(pid);
    log(`S3 soak for ${values.duration}: idle RSS ${mb(idle)} MB, sampling every ${SAMPLE_S}s`);
    const points: Point[] = [];
    let lost: number | undefined;
    let loadOver = false;
    const t0 = Date.now();
    // Sleeping to absolute deadlines keeps the samples on the 5 s grid over a long run.
    const sampler = (async () => {
      for (let i = 1; i * SAMPLE_S <= durationS; i++) {
        await sleep(t0 + i * SAMPLE_S * 1000 - Date.now());
        if (loadOver) return;
        const bytes = rssBytes(pid);
        // No /proc entry left: the gateway died, and the rest of the run would only measure wrk's errors.
        if (bytes === 0) {
          lost = i * SAMPLE_S;
          stopOurWrk();
          return;
        }
        points.push({ t: i * SAMPLE_S, bytes });
        if ((i * SAMPLE_S) % (durationS < 120 ? 10 : 60) === 0) log(`${clock(i * SAMPLE_S)} RSS ${mb(bytes)} MB`);
      }
    })();
    let result: LoadResult;
    try {
      result = await runWrk({ port: peer.ingressPort!, path: load.path, durationS, tokenScript: writeTokenScript(material.dir), tokenFile: load.tokens(material) });
    } catch (err) {
      loadOver = true;
      throw lost === undefined ? err : new Error(`portcullis (pid ${pid}) exited during the soak, before ${clock(lost)}`);
    }
    // wrk ends just after the last sample's deadline; wait for that sample rather than drop it.
    await sampler;
    if (lost !== undefined) throw new Error(`portcullis (pid ${pid}) exited during the soak, before ${clock(lost)}`);

    const markdown = report(durationS, idle, points, result, upstreams.kind);
    fs.mkdirSync(path.dirname(values.out), { recursive: true });
    fs.writeFileSync(values.out, markdown);
    console.log(markdown);
    log(`written to ${path.relative(process.cwd(), values.out)}`);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await Promise.allSettled([peer?.stop(), upstreams?.stop()]);
    material.remove();
  }
}

function report(durationS: number, idle: number, points: readonly Point[], load: LoadResult, upstreamKind: string): string {
  // Per minute, or per 10 s for short runs; the warm-up (60 s, or the first third of runs under 3 minutes)
  // is shown but not compared: caches, JIT and pools fill there, which is not growth.
  const windowS = durationS < 120 ? 10 : 60;
  const warmS = durationS >= 180 ? 60 : durationS / 3;
  const windows: Window[] = [];
  for (let from = 0; from < durationS; from += windowS) {
    const to = Math.min(from + windowS, durationS);
    const inside = points.filter((p) => p.t > from && p.t <= to);
    if (inside.length) windows.push({ from, to, points: inside });
  }
  const max = (w: Window) => Math.max(...w.points.map((p) => p.bytes));
  const min = (w: Window) => Math.min(...w.points.map((p) => p.bytes));
  const first = windows.find((w) => w.from >= warmS);
  const last = windows.at(-1);
  if (!first || !last) throw new Error(`no RSS sample after the ${warmS.toFixed(0)} s warm-up`);

  const peak = Math.max(...points.map((p) => p.bytes));
  const windowGrowth = (min(last) - min(first)) / min(first);
  const verdict = windowGrowth <= TOLERANCE ? 'no growth' : 'grew';
  const command = ['node', ...process.execArgv, path.relative(ROOT, process.argv[1] ?? 'test/bench/soak.ts'), ...process.argv.slice(2)].join(' ');
  const signed = (n: number, digits: number) => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;
  return [
    `Portcullis S3 memory soak, ${new Date().toISOString().slice(0, 10)}: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, gateway on Node ${gatewayNode.version}; ${pinningNote()}.`,
    `S3 = ${SCENARIOS.S3.title}; wrk -t1 -c${CONNECTIONS} keep-alive over TLS 1.3 with the 256 ES256 tokens cycled, for ${clock(durationS)}; upstream ${upstreamKind}; access logs on (to /dev/null); Portcullis compiled build (dist/).`,
    `RSS = VmRSS of the gateway's process tree, sampled every ${SAMPLE_S} s.`,
    '',
    '```',
    command,
    '```',
    '',
    `Requests served: ${int(load.requests)} in ${load.durationS.toFixed(1)} s = ${int(load.rps)} req/s (p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms${load.p999Ms === undefined ? '' : `, p99.9 ${load.p999Ms.toFixed(2)} ms`}${load.errors ? `, ${load.errors} errors` : ', no errors'}).`,
    '',
    '| elapsed | RSS MB min | RSS MB max | samples |',
    '|---|---:|---:|---:|',
    `| idle, before load | ${mb(idle)} | ${mb(idle)} | 1 |`,
    ...windows.map((w) => `| ${clock(w.from)}–${clock(w.to)}${w.from < warmS ? ' (warm-up)' : ''} | ${mb(min(w))} | ${mb(max(w))} | ${w.points.length} |`),
    '',
    `- Peak RSS: ${mb(peak)} MB (issue #6 bound: 100 MB, ${peak <= 100 * MB ? 'met' : 'exceeded'}).`,
    `- Window floors (lowest sample): first after warm-up ${clock(first.from)}–${clock(first.to)} ${mb(min(first))} MB, last ${clock(last.from)}–${clock(last.to)} ${mb(min(last))} MB (${signed(windowGrowth * 100, 1)} %; tolerance ${TOLERANCE * 100} %); peaks ${mb(max(first))} and ${mb(max(last))} MB.`,
    `- Verdict: **${verdict}**${first === last ? ' (the first and last windows are the same one: run longer for a real comparison)' : ''}.`,
    '',
  ].join('\n');
}

try {
  await main();
} catch (err) {
  log(`soak failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
