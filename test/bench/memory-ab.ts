// Memory A/B under S3: gateway variants (a checkout's compiled build plus Node flags) measured in interleaved
// rounds, each round a fresh gateway process, so that idle RSS (before any load) is measured as well as the peak
// under load. run.ts --base compares two builds in one long-lived process each; this compares heap settings too.
//
//   node --import tsx test/bench/memory-ab.ts --variant main=../main-checkout --variant this=. --variant semi4=.:--max-semi-space-size=4
//
// A variant is NAME=DIR[:FLAG,FLAG...] (DIR holds a `npm run build`); a FLAG written VAR=VALUE (no leading dashes) is
// set in the gateway's environment instead (`--variant arena2=.:MALLOC_ARENA_MAX=2`). Prints one line per round and variant:
// idle RSS, peak RSS under load, req/s, requests per CPU-second of the gateway, p50/p99/p99.9.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createMaterial } from './material.js';
import { startPortcullis } from './peers/portcullis.js';
import { LOAD_CORE, hasCommand, measure, nodeBinary, pinningNote, rssBytes } from './proc.js';
import { parseDuration, perCore } from './report.js';
import { SCENARIOS } from './scenarios.js';
import { startUpstreams } from './upstream.js';
import { runWrk, writeTokenScript } from './wrk.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true, default: [] },
    duration: { type: 'string', default: '8s' },
    rounds: { type: 'string', default: '3' },
    node: { type: 'string', default: process.execPath },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help || values.variant.length === 0) {
  console.log('Usage: node --import tsx test/bench/memory-ab.ts --variant NAME=DIR[:FLAG|VAR=VALUE,...] [--variant ...] [--duration 8s] [--rounds 3] [--node PATH]');
  process.exit(values.help ? 0 : 2);
}

interface Variant {
  name: string;
  root: string;
  flags: string[];
  env: Record<string, string>;
}

function parseVariant(text: string): Variant {
  const match = /^([^=]+)=([^:]+)(?::(.+))?$/.exec(text);
  if (!match) throw new Error(`--variant: expected NAME=DIR[:FLAG,FLAG...], got ${text}`);
  const items = match[3]?.split(',') ?? [];
  const env = Object.fromEntries(items.filter((item) => !item.startsWith('-')).map((item) => item.split('=', 2) as [string, string]));
  return { name: match[1]!, root: path.resolve(match[2]!), flags: items.filter((item) => item.startsWith('-')), env };
}

const MB = 1024 * 1024;
/** A fresh process settles (JIT, pools, the first timers) before its idle RSS is read. */
const SETTLE_MS = 1500;
/** Load before the measured run, as run.ts warms up. */
const WARM_UP_S = 2;

async function main(): Promise<void> {
  if (!hasCommand('wrk')) throw new Error('wrk is not installed (apt-get install -y wrk)');
  const variants = values.variant.map(parseVariant);
  const durationS = parseDuration(values.duration);
  const rounds = Number(values.rounds);
  const gatewayNode = nodeBinary(values.node);
  const load = SCENARIOS.S3.load;
  if (load.kind !== 'wrk' || !load.tokens) throw new Error('S3 is expected to be a wrk scenario with tokens');
  if (hasCommand('taskset')) spawnSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)]);
  const material = await createMaterial();
  const upstreams = await startUpstreams(material);
  const tokenScript = writeTokenScript(material.dir);
  console.log(`S3 memory A/B, gateway on Node ${gatewayNode.version}; ${pinningNote()}; ${durationS} s × ${rounds} rounds`);
  try {
    for (let round = 1; round <= rounds; round++) {
      // The order rotates each round, as run.ts does, so no variant always runs first.
      for (const v of variants.map((_, i) => variants[(i + round - 1) % variants.length]!)) {
        const peer = await startPortcullis({ material, upstreams, accessLog: true, node: gatewayNode.binary }, 'dist', { root: v.root, nodeFlags: v.flags, env: v.env });
        try {
          await sleep(SETTLE_MS);
          const idle = rssBytes(peer.pid);
          const wrk = (seconds: number) => runWrk({ port: peer.ingressPort!, path: load.path, durationS: seconds, tokenScript, tokenFile: load.tokens!(material) });
          await wrk(WARM_UP_S);
          const { result, usage } = await measure(peer.pid, () => wrk(durationS));
          const p999 = result.p999Ms === undefined ? '' : ` p99.9 ${result.p999Ms.toFixed(1)}`;
          console.log(
            `round ${round} ${v.name}: idle ${(idle / MB).toFixed(0)} MB, peak ${(usage.peakRssBytes / MB).toFixed(0)} MB, ` +
              `${result.rps.toFixed(0)} req/s, ${perCore({ load: result, usage }).toFixed(0)} per core, ` +
              `p50 ${result.p50Ms.toFixed(1)} p99 ${result.p99Ms.toFixed(1)}${p999} ms${result.errors ? `, ${result.errors} errors` : ''}`,
          );
        } finally {
          await peer.stop();
        }
      }
    }
  } finally {
    await upstreams.stop();
    material.remove();
  }
}

try {
  await main();
} catch (err) {
  console.error(`memory A/B failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
