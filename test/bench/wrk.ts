// wrk, the HTTP/1.1 load generator of the ingress scenarios: 64 keep-alive connections (or Connection:
// close for HS), one thread on the load core, latency percentiles from --latency (p99.9 printed by the Lua
// script's `done`: --latency stops at p99). Tokens are cycled from a file by the same script so every peer
// sees the same 256 (or 4,096) distinct tokens in the same order.
import fs from 'node:fs';
import path from 'node:path';
import { SERVER_NAME } from './material.js';
import { LOAD_CORE, pinned, runToEnd } from './proc.js';

export const CONNECTIONS = 64;

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** The wrk and CONNECT load generators report it; optional for load generators that do not. */
  p999Ms?: number;
  /** Non-2xx answers, socket errors and timeouts; a run with any is not reported. */
  errors: number;
}

const TOKEN_SCRIPT = `-- Cycles the tokens in BENCH_TOKENS (when set), one per request; prints the p99.9 latency in microseconds.
local file = os.getenv("BENCH_TOKENS")
if file then
  local tokens = {}
  for line in io.lines(file) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
  local i = 0
  request = function()
    i = i % #tokens + 1
    return wrk.format(nil, nil, { ["Host"] = "${SERVER_NAME}", ["Authorization"] = "Bearer " .. tokens[i] })
  end
end
done = function(summary, latency, requests)
  io.write(string.format("p99.9 %d\\n", latency:percentile(99.9)))
end
`;

export function writeTokenScript(dir: string): string {
  const file = path.join(dir, 'tokens.lua');
  fs.writeFileSync(file, TOKEN_SCRIPT);
  return file;
}

export async function runWrk(options: {
  port: number;
  path: string;
  durationS: number;
  tokenFile?: string;
  tokenScript: string;
  connectionClose?: boolean;
}): Promise<LoadResult> {
  const args = ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${options.durationS}s`, '--latency', '--timeout', '5s', '-H', `Host: ${SERVER_NAME}`];
  if (options.connectionClose) args.push('-H', 'Connection: close');
  args.push('-s', options.tokenScript);
  args.push(`https://${SERVER_NAME}:${options.port}${options.path}`);
  const env = options.tokenFile ? { ...process.env, BENCH_TOKENS: options.tokenFile } : process.env;
  const { code, stdout, stderr } = await runToEnd(pinned(LOAD_CORE, args), (options.durationS + 30) * 1000, env);
  if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr || stdout}`);
  return parseWrk(stdout);
}

/** wrk prints durations as 1.23ms, 456.00us, 1.02s, 2.00m. */
function toMs(value: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!match) throw new Error(`unexpected wrk duration ${value}`);
  const n = Number(match[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
}

export function parseWrk(out: string): LoadResult {
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (!total || !p50 || !p99) throw new Error(`cannot parse wrk output:\n${out}`);
  const requests = Number(total[1]);
  const durationS = toMs(`${total[2]}${total[3]}`) / 1000;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  // With Connection: close, wrk counts each server-side close as a read error; only the others are failures.
  const socketErrors = socket ? Number(socket[1]) + Number(socket[3]) + Number(socket[4]) : 0;
  const p999 = /^p99\.9 (\d+)$/m.exec(out);
  return {
    requests,
    durationS,
    rps: requests / durationS,
    p50Ms: toMs(p50[1]!),
    p99Ms: toMs(p99[1]!),
    ...(p999 ? { p999Ms: Number(p999[1]) / 1000 } : {}),
    errors: non2xx + socketErrors,
  };
}
