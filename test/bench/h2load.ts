// h2load (Debian nghttp2-client), the HTTP/2 load generator of S1-h2 and S3-h2: TLS with ALPN h2, several
// processes on the load core, each `-c CONNECTIONS -m STREAMS`. h2load sends one fixed header set per run, so
// S3-h2 gives each process its own token (the verified-token cache hits after the first request of each).
// h2load prints no percentiles: each process writes one line per request (--log-file) and they are read here.
import fs from 'node:fs';
import path from 'node:path';
import { SERVER_NAME } from './material.js';
import { LOAD_CORE, pinned, runToEnd } from './proc.js';
import { H2LOAD } from './scenarios.js';
import type { LoadResult } from './wrk.js';

/** The first `count` lines of a token file. */
function firstTokens(file: string, count: number): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(0, count);
}

export async function runH2load(options: { port: number; path: string; durationS: number; tokenFile?: string; dir: string }): Promise<LoadResult> {
  const tokens = options.tokenFile ? firstTokens(options.tokenFile, H2LOAD.processes) : [];
  const runs = Array.from({ length: H2LOAD.processes }, async (_, i) => {
    const logFile = path.join(options.dir, `h2load-${process.pid}-${i}.log`);
    const args = [
      'h2load',
      `-c${H2LOAD.connections}`,
      `-m${H2LOAD.streams}`,
      `-D${options.durationS}`,
      '-H',
      `:authority: ${SERVER_NAME}`,
      `--log-file=${logFile}`,
      ...(tokens[i] ? ['-H', `authorization: Bearer ${tokens[i]}`] : []),
      `https://${SERVER_NAME}:${options.port}${options.path}`,
    ];
    const { code, stdout, stderr } = await runToEnd(pinned(LOAD_CORE, args), (options.durationS + 30) * 1000);
    try {
      if (code !== 0) throw new Error(`h2load exited ${code}: ${stderr || stdout}`);
      return { ...parseH2load(stdout), latenciesUs: readLog(fs.readFileSync(logFile, 'utf8')) };
    } finally {
      fs.rmSync(logFile, { force: true });
    }
  });
  const results = await Promise.all(runs);
  const latencies = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const requests = results.reduce((n, r) => n + r.succeeded, 0);
  const durationS = Math.max(...results.map((r) => r.durationS));
  const at = (q: number) => (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) / 1000;
  return { requests, durationS, rps: requests / durationS, p50Ms: at(0.5), p99Ms: at(0.99), errors: results.reduce((n, r) => n + r.errors, 0) };
}

/** `finished in 4.00s, …` and `requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout`. */
export function parseH2load(out: string): { succeeded: number; durationS: number; errors: number } {
  const finished = /finished in ([\d.]+)(ms|s),/.exec(out);
  const counts = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!finished || !counts || !status) throw new Error(`cannot parse h2load output:\n${out}`);
  const durationS = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  // h2load counts a 4xx/5xx answer as succeeded, and its status counts include answers after the end: 2xx and done.
  const succeeded = Math.min(Number(counts[1]), Number(status[1]));
  const errors = Number(counts[2]) + Number(counts[3]) + Number(counts[4]) + Number(status[2]) + Number(status[3]) + Number(status[4]);
  return { succeeded, durationS, errors };
}

/** --log-file lines: start time (µs since the epoch), status, µs to the end of the response; 2xx only. */
function readLog(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const [, status, us] = line.split('\t');
    if (status !== undefined && status.startsWith('2') && us !== undefined) out.push(Number(us));
  }
  return out;
}
