// V8's young generation for `portcullis run`. Under load V8 grows each of its two semi-spaces to 64 MB on Node 24
// (16 MB on Node 20): a 128 MB new space that alone put the gateway at ~285 MB RSS under S3, against ~165 MB with
// 8 MB semi-spaces at the same throughput (docs/performance.md, "Memory and tail"). The size is fixed when V8 starts
// (`v8.setFlagsFromString` is too late), so `run` replaces itself with the same command plus the flag through
// `process.execve` (Node ≥ 22.15): same pid, same stdio, same environment. cli.ts imports this module first, so
// that happens before the rest of the gateway has loaded. A --max-semi-space-size given on the command line or in
// NODE_OPTIONS is the operator's choice and is kept; Node 20 has no execve (NODE_OPTIONS sets the flag there).
import fs from 'node:fs';
import path from 'node:path';

export const SEMI_SPACE_FLAG = '--max-semi-space-size=8';

/** The files `portcullis` starts from: the CLI itself (compiled or through tsx) and the npm bin launcher. */
const ENTRY_POINTS = new Set(['cli.js', 'cli.ts', 'portcullis.js']);

/** The argv (without node) to re-execute with, or undefined when this process should run as it is. */
export function youngGenerationArgs(argv: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] | undefined {
  const [script, command] = argv.slice(1);
  if (command !== 'run' || script === undefined || !ENTRY_POINTS.has(path.basename(realPath(script)))) return undefined;
  const chosen = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) => /^--max[-_]semi[-_]space[-_]size\b/.test(flag));
  return chosen ? undefined : [SEMI_SPACE_FLAG, ...execArgv, ...argv.slice(1)];
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
const args = execve ? youngGenerationArgs(process.argv, process.execArgv, process.env.NODE_OPTIONS) : undefined;
if (execve && args) execve(process.execPath, [process.execPath, ...args], process.env);
