// Multi-process mode as a user runs it: the real CLI (`portcullis run --workers N`) on a config file made from the
// embedded defaults (development PKI, demo backend, token issuer) on free ports.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDevPki } from '../../certs/dev-bootstrap.js';
import { loadConfigText } from '../../gateway/config/load.js';
import type { Config } from '../../gateway/config/schema.js';
import { request, type Reply } from './ingress.js';
import { freePorts, until } from './net.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEFAULT_YAML = path.join(ROOT, 'gateway/config/default.yaml');
const CLI = path.join(ROOT, 'gateway/cli.ts');
/** Resolved here, so the CLI also runs with a working directory outside the repository. */
const TSX = import.meta.resolve('tsx');

export interface EmbeddedConfig {
  config: Config;
  edge: number;
  /** The admin plane's base URL. */
  admin: string;
  caPem: string;
}

/** The embedded config, its PKI made in `stateDir`, every port a free one, no file watching; the egress proxy only on request. */
export async function embeddedConfig(stateDir: string, options: { egress?: boolean } = {}): Promise<EmbeddedConfig> {
  ensureDevPki(stateDir, { trustDomain: 'portcullis.dev', hostnames: ['localhost'] });
  const ports = await freePorts(['edge', 'admin', 'demoBackend', 'tokenIssuer', 'egress']);
  const vars = {
    STATE_DIR: stateDir,
    EDGE_PORT: String(ports.edge),
    ADMIN_PORT: String(ports.admin),
    DEMO_BACKEND_PORT: String(ports.demoBackend),
    TOKEN_ISSUER_PORT: String(ports.tokenIssuer),
    EGRESS_PORT: String(ports.egress),
  };
  const config = loadConfigText(fs.readFileSync(DEFAULT_YAML, 'utf8'), DEFAULT_YAML, vars).config;
  if (!options.egress) delete config.egress;
  // Signals are the only reload trigger under test.
  config.reload = { watchIntervalMs: 0 };
  return { config, edge: ports.edge, admin: `http://127.0.0.1:${ports.admin}`, caPem: fs.readFileSync(path.join(stateDir, 'pki/ca.pem'), 'utf8') };
}

export interface ClusterRun {
  readonly primary: ChildProcess;
  /** The primary's exit code. */
  readonly exit: Promise<number | null>;
  /** Everything the primary and its workers printed so far. */
  output(): string;
  /** The JSON log lines printed so far. */
  logLines(): Record<string, unknown>[];
  /** Pids of the workers that logged listening on the edge listener. */
  edgePids(): Set<number>;
  /** Requests answered by each worker (1, 2, …) so far, from the aggregated metrics. */
  perWorker(): Promise<number[]>;
  /** `n` requests at once, each on its own connection, so the kernel spreads them over the workers. */
  burst(n: number, path: string, headers?: () => Record<string, string>): Promise<Reply[]>;
}

/**
 * Starts `portcullis run --workers N` on the config file, or the command line `args` (in the config file's folder),
 * under an open-files limit of `openFiles` when given (soft and hard: Node raises its soft limit to the hard one);
 * resolves once the admin plane listens.
 */
export async function startCluster(
  configFile: string,
  stateDir: string,
  at: EmbeddedConfig,
  workers = 2,
  args?: readonly string[],
  openFiles?: number,
): Promise<ClusterRun> {
  const command = [process.execPath, '--import', TSX, CLI, ...(args ?? ['run', '--workers', String(workers), '-c', configFile, '--state-dir', stateDir])];
  const [file, ...argv] = openFiles === undefined ? command : ['bash', '-c', `ulimit -n ${openFiles} && exec "$@"`, 'bash', ...command];
  const primary = spawn(file!, argv, { cwd: path.dirname(configFile), stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((resolve) => primary.once('exit', (code) => resolve(code)));
  let out = '';
  primary.stdout!.on('data', (c: Buffer) => (out += c));
  primary.stderr!.on('data', (c: Buffer) => (out += c));
  const logLines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await Promise.race([
    until('the admin plane', () => (/"listener":"admin"/.test(out) ? true : undefined), 60_000),
    exit.then((code) => Promise.reject(new Error(`gateway exited with ${code}: ${out}`))),
  ]);
  return {
    primary,
    exit,
    output: () => out,
    logLines,
    edgePids: () => new Set(logLines().filter((l) => l.event === 'LISTENING' && l.listener === 'edge').map((l) => l.pid as number)),
    async perWorker() {
      const text = await (await fetch(`${at.admin}/metrics`)).text();
      return Array.from({ length: workers }, (_, i) => Number(new RegExp(`^portcullis_worker_requests_total\\{worker="${i + 1}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0));
    },
    burst: (n, p, headers) => Promise.all(Array.from({ length: n }, () => request(at.edge, at.caPem, { path: p, ...(headers ? { headers: headers() } : {}) }))),
  };
}
