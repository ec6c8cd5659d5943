// Child processes of the bench: started pinned to a core, waited for, measured from /proc, stopped.
// CPU and memory are read from /proc because the figure that matters is the proxy's own CPU, across
// every process and thread it forks (nginx master + worker, squid's kids), not the machine's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Core 1 runs the proxy under test; core 0 the load generator and the upstream (2-core machine). */
/**
 * The proxy's CPUs, as a taskset list: core 1 alone by default. `BENCH_PROXY_CPUS=0,1` with `--workers 2` lets a
 * multi-process proxy spread over both cores of a 2-core machine (core 0 then also runs the load and upstream).
 */
export const PROXY_CPUS = process.env.BENCH_PROXY_CPUS ?? '1';
export const LOAD_CORE = 0;

const HAS_TASKSET = spawnSync('taskset', ['--version']).status === 0;
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export function pinningNote(): string {
  return HAS_TASKSET
    ? `taskset: proxy on core ${PROXY_CPUS}, load generator and upstream on core ${LOAD_CORE}`
    : 'taskset not found: processes are not pinned (install util-linux)';
}

/** `argv` run with its CPU affinity set to `core` when taskset exists. */
export function pinned(core: number | string, argv: readonly string[]): string[] {
  return HAS_TASKSET ? ['taskset', '-c', String(core), ...argv] : [...argv];
}

export interface Started {
  name: string;
  child: ChildProcess;
  /** stderr and stdout tail, for the error message when a process dies early. */
  output(): string;
  stop(): Promise<void>;
}

export function start(
  name: string,
  argv: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdoutFile?: string; killAfterMs?: number } = {},
): Started {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error(`${name}: empty command`);
  const out = options.stdoutFile ? fs.openSync(options.stdoutFile, 'a') : 'pipe';
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', out, 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    child,
    output: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 5000);
      await exited;
      clearTimeout(timer);
      if (typeof out === 'number') fs.closeSync(out);
    },
  };
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its output. */
export function runToEnd(argv: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    // 'close', not 'exit': 'exit' may come before the last of stdout has been read (h2load's summary was cut).
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** `--node PATH` of the bench and the soak: the binary the Node peers run under, and the version it reports. */
export function nodeBinary(binary: string): { binary: string; version: string } {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`--node: ${binary} does not run: ${probe.error?.message ?? probe.stderr}`);
  return { binary, version: probe.stdout.trim() };
}

/** A port free right now on 127.0.0.1; peers that cannot listen on port 0 and report it get one of these. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once `port` accepts TCP connections; fails if `proc` exits first or after `timeoutMs`. */
export async function waitForPort(port: number, proc: Started, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}):\n${proc.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} did not listen on ${port} within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pid and every descendant (nginx master → worker, taskset → proxy). */
function processTree(root: number): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    const pid = tree[i]!;
    for (const task of safeReaddir(`/proc/${pid}/task`)) {
      const children = safeRead(`/proc/${pid}/task/${task}/children`);
      for (const child of children.split(' ')) if (child.trim()) tree.push(Number(child));
    }
  }
  return tree;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** utime + stime of the tree in seconds. Fields 14 and 15 of /proc/PID/stat, after the parenthesised comm. */
export function cpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    const stat = safeRead(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After comm, field 3 (state) is index 0, so utime (14) and stime (15) are indexes 11 and 12.
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / CLOCK_TICKS;
}

/** Resident memory of the tree in bytes (VmRSS). */
export function rssBytes(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(safeRead(`/proc/${pid}/status`));
    if (match) kb += Number(match[1]);
  }
  return kb * 1024;
}

export interface Usage {
  cpuSeconds: number;
  peakRssBytes: number;
}

/** Measures the tree of `pid` while `work` runs: CPU seconds spent and the peak RSS, sampled every 200 ms. */
export async function measure<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; usage: Usage }> {
  const before = cpuSeconds(pid);
  let peak = rssBytes(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 200);
  try {
    const result = await work();
    peak = Math.max(peak, rssBytes(pid));
    return { result, usage: { cpuSeconds: cpuSeconds(pid) - before, peakRssBytes: peak } };
  } finally {
    clearInterval(sampler);
  }
}

/** A proxy counts as idle when it used at most one clock tick (2 % of a core at 100 Hz) over this window. */
const IDLE_WINDOW_MS = 500;

/**
 * Waits, up to `maxMs`, until every process tree in `pids` is idle: the work a proxy goes on doing after its load ends
 * (a tracing gateway exporting its queued spans, connections closing) must not share the proxy core with the next
 * measurement. Returns the time waited.
 */
export async function settle(pids: readonly number[], maxMs = 15_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < maxMs) {
    const before = pids.map(cpuSeconds);
    await sleep(IDLE_WINDOW_MS);
    if (pids.every((pid, i) => cpuSeconds(pid) - before[i]! <= 1 / CLOCK_TICKS)) break;
  }
  return Date.now() - started;
}
