// V8's heap sizing for `portcullis run`. Under S3 load V8 grows each of its two semi-spaces to 64 MB on Node 24
// (16 MB on Node 20), and lets the old generation grow to up to 4× what survives a full collection: ~280 MB RSS
// on Node 24 with a live heap of ~25 MB. With 8 MB semi-spaces and the old generation allowed 1.5× its live size
// (--heap-growing-percent=50), the same load peaks at ~150 MB (Node 24) and ~125 MB (Node 20) at the same
// per-core throughput (docs/performance.md, "Memory and tail"). V8 reads these when it starts
// (`v8.setFlagsFromString` is too late), so `run` replaces itself with the same command plus the flags through
// `process.execve` (Node ≥ 22.15): same pid, same stdio, same environment. cli.ts imports this module first, so
// that happens before the rest of the gateway has loaded. A flag the operator set (command line or NODE_OPTIONS)
// is kept as set; Node 20 has no execve and runs as started (give it the flags on its command line).
// The re-executed process also gets glibc's MALLOC_ARENA_MAX=1 unless the environment sets it: one malloc arena
// instead of one per thread took S3's peak RSS on Node 24 from 155–160 to 143–149 MB at the same throughput (9
// rounds of test/bench/memory-ab.ts). Node 20 is left alone: there the same setting raised it (124–126 → 139–143 MB).
import fs from 'node:fs';
import path from 'node:path';

export const HEAP_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50'] as const;

/** The environment the re-executed process starts with: the same, plus one malloc arena unless the operator chose. */
export function heapEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.MALLOC_ARENA_MAX === undefined ? { ...env, MALLOC_ARENA_MAX: '1' } : env;
}

/** The files `portcullis` starts from: the CLI itself (compiled or through tsx) and the npm bin launcher. */
const ENTRY_POINTS = new Set(['cli.js', 'cli.ts', 'portcullis.js']);

/** `--max-semi-space-size=8` → `maxsemispacesize`: V8 accepts dashes and underscores alike. */
const flagName = (flag: string): string => flag.replace(/^--/, '').split('=')[0]!.replace(/[-_]/g, '');

/** The argv (without node) to re-execute with, or undefined when this process should run as it is. */
export function heapFlagArgs(argv: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] | undefined {
  const [script, command] = argv.slice(1);
  if (command !== 'run' || script === undefined || !ENTRY_POINTS.has(path.basename(realPath(script)))) return undefined;
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((flag) => flag.startsWith('--')).map(flagName));
  const missing = HEAP_FLAGS.filter((flag) => !given.has(flagName(flag)));
  return missing.length ? [...missing, ...execArgv, ...argv.slice(1)] : undefined;
}

function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

const execve = (process as { execve?: Execve }).execve;
// A process forked with an IPC channel (a cluster worker, a supervisor's child) keeps running as started: the channel's
// descriptor would not survive the exec. Cluster workers inherit the primary's flags anyway (its execArgv).
const args = execve && !process.channel ? heapFlagArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS) : undefined;
if (execve && args) execve(process.execPath, [process.execPath, ...args], heapEnv(process.env));
