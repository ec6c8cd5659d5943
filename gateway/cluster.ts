// Multi-process mode (`portcullis run --workers N`): a primary process and N workers, each a whole gateway on the
// same config, sharing the listening sockets through node:cluster. The primary serves no traffic: it forks and
// restarts workers, counts the in-memory rate limits for all of them (rate-limiter-flexible's cluster master, see
// limits/rate-limiter.ts), runs the admin plane (metrics aggregated over the workers, readiness = every worker
// ready), drives reloads (it watches the input files, validates once, applies the config to its admin plane and to
// every worker, and counts the outcome), writes the audit trail (one hash chain has one writer: workers relay their
// records, see audit/relay.ts), and turns SIGTERM into an orderly drain of every worker.
//
// Per worker, as with replicas: the verified-token cache, upstream pools, listener `maxConnections` and the egress
// proxy's per-identity limits. Shared: listening sockets, TLS session-ticket keys (a client resumes on any worker),
// in-memory rate limits.
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { Registry } from 'prom-client';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import { createAdminServer } from './admin/server.js';
import { startGateway, type Gateway } from './app.js';
import { createRelayTrail } from './audit/relay.js';
import { createAuditTrail, type AuditWriter } from './audit/trail.js';
import { installProcessGuard } from './core/process-guard.js';
import { DEFAULTS } from './config/defaults.js';
import { ConfigError, type LoadedConfig } from './config/load.js';
import type { MeshIdentityConfig } from './config/schema.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { aggregateWorkerMetrics, createAuditFailureCounter, createReloadMetrics, METRIC_NAMES, type WorkerMetrics } from './core/metrics.js';
import type { Reloadable } from './core/reloadable.js';
import { newTicketKeys } from './ingress/runtime.js';
import { createReloader, rejectionIssues, type ReloadResult } from './reload.js';

/** More workers than this is a typo, not a machine. */
const MAX_WORKERS = 256;
/** The worker's slot number (1..N), stable across restarts: a log field and the `worker` metric label. */
const WORKER_ENV = 'PORTCULLIS_WORKER';
/** A worker that lived this long before crashing restarts at once; quicker crashes back off exponentially. */
const STABLE_MS = 30_000;
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 30_000;
/** Workers drain for `shutdown.drainMs` and then cut what is left; the primary kills one still running this much later. */
const SHUTDOWN_GRACE_MS = 5_000;
const ASK_TIMEOUT_MS = { ready: 2_000, metrics: 2_000, config: 2_000, reload: 10_000 } as const;

type Question = { question: 'ready' | 'metrics' | 'config' | 'reload' };
type ToWorker =
  | { portcullis: 'init'; ticketKeys: string; auditRefusing: boolean }
  | ({ portcullis: 'ask'; id: number } & Question)
  | { portcullis: 'audit-refusing'; refusing: boolean }
  | { portcullis: 'shutdown' };
type ToPrimary =
  | { portcullis: 'hello' }
  | { portcullis: 'audit'; records: object[] }
  | { portcullis: 'started'; ports: [string, number][] }
  | { portcullis: 'failed'; message: string }
  | { portcullis: 'answer'; id: number; value: unknown };

function isMessage<T extends { portcullis: string }>(msg: unknown): msg is T {
  return typeof msg === 'object' && msg !== null && typeof (msg as { portcullis?: unknown }).portcullis === 'string';
}

/** `--workers`: a count, or `auto` for one per core the process may use. */
export function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return os.availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new Error(`--workers takes "auto" or a whole number from 1 to ${MAX_WORKERS}, got "${value}"`);
  return n;
}

/** Whether this process is a worker forked by `runPrimary` (the CLI then runs `runWorker`). */
export function isGatewayWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

export interface PrimaryOptions {
  workers: number;
  /** Loads and validates the config, as each worker will; throws ConfigError. */
  load(): LoadedConfig;
  /** The config the primary validated at start (its `admin` section configures the admin plane). */
  initial: LoadedConfig;
  logger: Logger;
  /** Mesh trust bundle (PEM) for the admin plane's client certificates. */
  meshBundlePem?: string;
  /** `mesh.revoked`, refused on the admin plane's client certificates. */
  meshRevoked?: MeshIdentityConfig['revoked'];
  /** Called once every worker listens, with the ports they listen on. */
  onListening?(ports: ReadonlyMap<string, number>): void;
  /** Reports that the gateway (`what`) could not start, once for the machine; returns the exit code. */
  failStart(what: string, err: unknown): number;
}

interface Slot {
  readonly number: number;
  worker?: Worker;
  started: boolean;
  startedAt: number;
  crashes: number;
  restart?: NodeJS.Timeout;
}

/** Runs the primary until SIGTERM/SIGINT; resolves with the exit code (1 when the workers could not start). */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  // The kernel hands each accepted connection to whichever worker accepts first. The default (round-robin) makes
  // the primary accept every connection and pass it on over IPC: one process doing all accepts of a TLS proxy.
  // Must be set before the first fork.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Created before any worker so the first limiter a worker builds finds it.
  new RateLimiterClusterMaster();
  // The primary's own metrics, added to the workers' at each scrape: reload outcomes and audit write failures.
  const own = new Registry();
  let trail: AuditWriter | undefined;
  try {
    trail = startAuditTrail(options, own, (refusing) => {
      for (const { worker } of live()) send(worker, { portcullis: 'audit-refusing', refusing });
    });
  } catch (err) {
    return options.failStart('audit trail', err);
  }
  const ticketKeys = newTicketKeys().toString('base64');
  const slots: Slot[] = Array.from({ length: options.workers }, (_, i) => ({ number: i + 1, started: false, startedAt: 0, crashes: 0 }));
  const slotOf = new Map<Worker, Slot>();
  const asks = new Map<number, (value: unknown) => void>();
  let nextAsk = 0;
  let stopping = false;
  let booting = true;
  let ports: Map<string, number> | undefined;
  /** Why the first worker that failed at boot failed (each worker fails the same way; one report is enough). */
  let bootFailure: string | undefined;
  let settleBoot!: (ok: boolean) => void;
  /** The drain the workers run now: a reload may have changed it since start. */
  let drainMs = options.initial.config.shutdown?.drainMs ?? DEFAULTS.drainMs;
  const booted = new Promise<boolean>((resolve) => (settleBoot = resolve));

  const send = (worker: Worker, msg: ToWorker) => {
    if (worker.isConnected()) worker.send(msg, undefined, ignoreClosedChannel);
  };
  const live = () => slots.flatMap((s) => (s.worker?.isConnected() && s.started ? [{ slot: s, worker: s.worker }] : []));
  const ask = (worker: Worker, question: Question): Promise<unknown> =>
    new Promise((resolve) => {
      const id = ++nextAsk;
      // A worker that dies or hangs answers `undefined`; callers treat that as not ready / no answer.
      const timer = setTimeout(() => settle(undefined), ASK_TIMEOUT_MS[question.question]);
      const settle = (value: unknown) => {
        clearTimeout(timer);
        asks.delete(id);
        resolve(value);
      };
      asks.set(id, settle);
      send(worker, { portcullis: 'ask', id, ...question });
    });

  const fork = (slot: Slot) => {
    slot.restart = undefined;
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.number) });
    slot.worker = worker;
    slot.started = false;
    slotOf.set(worker, slot);
  };

  cluster.on('message', (worker, msg: unknown) => {
    const slot = slotOf.get(worker);
    if (!slot || !isMessage<ToPrimary>(msg)) return;
    if (msg.portcullis === 'hello') send(worker, { portcullis: 'init', ticketKeys, auditRefusing: trail?.refusing() ?? false });
    else if (msg.portcullis === 'audit') for (const record of msg.records) trail?.appendRecord({ ...record, worker: slot.number });
    else if (msg.portcullis === 'answer') asks.get(msg.id)?.(msg.value);
    else if (msg.portcullis === 'started') {
      slot.started = true;
      slot.startedAt = Date.now();
      ports ??= new Map(msg.ports);
      if (booting && slots.every((s) => s.started)) settleBoot(true);
    } else if (msg.portcullis === 'failed') bootFailure ??= msg.message;
  });
  cluster.on('exit', (worker, code, signal) => {
    const slot = slotOf.get(worker);
    if (!slot) return;
    slotOf.delete(worker);
    if (slot.worker === worker) slot.worker = undefined;
    slot.started = false;
    if (stopping) return;
    // A worker that cannot start at boot (bad certificate, port taken) will not start on a retry either: refuse to
    // start, as the single process does.
    if (booting) return settleBoot(false);
    slot.crashes = Date.now() - slot.startedAt > STABLE_MS ? 1 : slot.crashes + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.crashes - 1));
    logger.error({ event: LOG_EVENTS.WORKER_EXITED, worker: slot.number, pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker exited; restarting it');
    slot.restart = setTimeout(() => fork(slot), delay);
  });

  const stopWorkers = async () => {
    stopping = true;
    for (const slot of slots) clearTimeout(slot.restart);
    const running = slots.flatMap((s) => (s.worker ? [s.worker] : []));
    // Gone means exited and its channel read to the end: a worker's last audit records arrive before its disconnect.
    const exited = Promise.all(
      running.map((w) =>
        Promise.all([
          w.process.exitCode !== null || w.process.signalCode !== null ? undefined : new Promise((r) => w.once('exit', r)),
          w.isConnected() ? new Promise((r) => w.once('disconnect', r)) : undefined,
        ]),
      ),
    );
    for (const worker of running) send(worker, { portcullis: 'shutdown' });
    const graceMs = drainMs + SHUTDOWN_GRACE_MS;
    const kill = setTimeout(() => {
      for (const worker of running) {
        if (worker.process.exitCode !== null || worker.process.signalCode !== null) continue;
        logger.warn({ pid: worker.process.pid, graceMs }, 'worker still draining after the grace period; killing it');
        worker.process.kill('SIGKILL');
      }
    }, graceMs);
    await exited;
    clearTimeout(kill);
    // Every record is in: write them and the last checkpoint.
    trail?.close();
  };

  for (const slot of slots) fork(slot);
  if (!(await booted)) {
    logger.fatal({ error: bootFailure }, 'a worker failed to start; stopping the others');
    await stopWorkers();
    return options.failStart('gateway', new Error(bootFailure ?? 'a worker exited while starting'));
  }
  booting = false;
  options.onListening?.(ports!);

  /**
   * The workers' part of a reload: each applies the config whole (Gateway.reload), and one that refuses refuses the
   * reload. It comes last, so nothing after it can fail once workers have applied. A worker that refuses what
   * another accepted (a file changed between their two loads) leaves them apart until the next reload.
   */
  const workers: Reloadable = {
    async prepare(config) {
      const answers = await Promise.all(live().map(({ slot, worker }) => ask(worker, { question: 'reload' }).then((value) => ({ slot, value }))));
      for (const { slot, value } of answers) {
        if (value === undefined) throw new Error(`worker ${slot.number} did not answer the reload`);
        const result = value as ReloadResult;
        if (!result.ok) throw typeof result.issues === 'string' ? new Error(`worker ${slot.number}: ${result.issues}`) : new ConfigError(result.issues);
      }
      return {
        commit: () => (drainMs = config.shutdown?.drainMs ?? DEFAULTS.drainMs),
        abort: async () => undefined,
      };
    },
  };
  // Reload outcomes are the primary's: counted once for the machine.
  const admin = createAdminServer(options.initial.config.admin, {
    logger,
    registry: {
      contentType: Registry.PROMETHEUS_CONTENT_TYPE,
      async metrics() {
        const answers = await Promise.all(live().map(async ({ slot, worker }) => ({ worker: String(slot.number), metrics: await ask(worker, { question: 'metrics' }) })));
        const aggregated = aggregateWorkerMetrics(answers.filter((a): a is WorkerMetrics => Array.isArray(a.metrics)).map(withoutPrimaryMetrics));
        return Registry.merge([aggregated, own]).metrics();
      },
    },
    async ready() {
      const workers = live();
      if (workers.length < slots.length) return false;
      const answers = await Promise.all(workers.map(({ worker }) => ask(worker, { question: 'ready' })));
      return answers.every((ready) => ready === true);
    },
    reload: () => reloader.reload('admin'),
    // Every worker runs the same config; the first one answering shows it.
    config: async () => {
      const first = live()[0];
      return first ? ask(first.worker, { question: 'config' }) : undefined;
    },
    configHash: () => reloader.hash(),
    ...(options.meshBundlePem !== undefined ? { meshBundlePem: options.meshBundlePem } : {}),
    ...(options.meshRevoked !== undefined ? { meshRevoked: options.meshRevoked } : {}),
  });
  const reloader = createReloader({
    load: options.load,
    parts: [admin, workers],
    initial: options.initial,
    logger,
    metrics: createReloadMetrics(own),
    watchIntervalMs: options.initial.config.reload?.watchIntervalMs ?? DEFAULTS.watchIntervalMs,
  });
  const onSighup = () => void reloader.reload('sighup');
  process.on('SIGHUP', onSighup);

  try {
    await admin.listen();
  } catch (err) {
    reloader.close();
    await stopWorkers();
    return options.failStart('admin plane', err);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.off('SIGHUP', onSighup);
  reloader.close();
  logger.info({ event: LOG_EVENTS.SHUTDOWN, workers: live().length }, 'draining every worker');
  // The admin plane stays up while the workers drain, so readiness reports 503 until the end.
  await stopWorkers();
  await admin.close();
  return 0;
}

/**
 * The machine's audit trail, written by the primary alone (workers relay their records), and the primary's count of
 * its failed writes; `onRefusingChange` passes `onWriteFailure: refuse` on to the workers. Throws like the single
 * process does at start (a key that is not Ed25519, a torn last line).
 */
function startAuditTrail(options: PrimaryOptions, own: Registry, onRefusingChange: (refusing: boolean) => void): AuditWriter | undefined {
  const failures = createAuditFailureCounter(own);
  const config = options.initial.config.audit;
  if (!config) return undefined;
  return createAuditTrail(config, { logger: options.logger, metrics: { auditWriteFailure: () => failures.inc() }, onRefusingChange });
}

/** A worker's metrics without the ones the primary keeps for the machine (the workers' copies stay 0). */
function withoutPrimaryMetrics(answer: WorkerMetrics): WorkerMetrics {
  return { ...answer, metrics: answer.metrics.filter((m) => m.name !== METRIC_NAMES.auditWriteFailures) };
}

export interface WorkerOptions {
  load(): LoadedConfig;
  /** The config this worker loaded at start. */
  initial: LoadedConfig;
  logger: Logger;
}

/** The slot number the primary gave this worker, for log lines. */
export function workerNumber(): number {
  return Number(process.env[WORKER_ENV]);
}

/** Runs one worker: the gateway and the answers to the primary; resolves with the exit code. */
export async function runWorker(options: WorkerOptions): Promise<number> {
  const { logger, initial } = options;
  let running: { gateway: Gateway } | undefined;
  let receiveInit!: (ticketKeys: Buffer) => void;
  const init = new Promise<Buffer>((resolve) => (receiveInit = resolve));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const audit = initial.config.audit && createRelayTrail(initial.config.audit, (records, sent) => relayAudit(records, sent, logger));

  const answer = async (question: Question): Promise<unknown> => {
    switch (question.question) {
      case 'ready':
        return running?.gateway.ready() ?? false;
      case 'metrics':
        return running?.gateway.metrics.registry.getMetricsAsJSON();
      case 'config':
        return running?.gateway.runtime().config;
      case 'reload':
        return running ? reloadWorker(running.gateway, options.load) : undefined;
    }
  };
  const onMessage = (msg: unknown) => {
    if (!isMessage<ToWorker>(msg)) return;
    if (msg.portcullis === 'init') {
      audit?.setRefusing(msg.auditRefusing);
      receiveInit(Buffer.from(msg.ticketKeys, 'base64'));
    } else if (msg.portcullis === 'audit-refusing') audit?.setRefusing(msg.refusing);
    else if (msg.portcullis === 'shutdown') stop();
    else if (msg.portcullis === 'ask') {
      void answer(msg).then(
        (value) => sendToPrimary({ portcullis: 'answer', id: msg.id, value }),
        (err: unknown) => logger.error({ err, question: msg.question }, 'worker could not answer the primary'),
      );
    }
  };
  // Reloads come from the primary, so that they are validated, applied and counted once. A SIGHUP that reaches this
  // worker (sent to the process group) is left to the primary rather than killing the worker (the default action).
  const onSighup = () => undefined;
  process.on('message', onMessage);
  // Signals sent to the whole process group (Ctrl-C) reach workers as well: drain, as on the primary's request.
  // A primary that is gone (killed) disconnects the channel: a worker never serves without its primary.
  for (const event of ['SIGTERM', 'SIGINT', 'disconnect'] as const) process.on(event, stop);
  process.on('SIGHUP', onSighup);
  const detach = () => {
    process.off('message', onMessage);
    for (const event of ['SIGTERM', 'SIGINT', 'disconnect'] as const) process.off(event, stop);
    process.off('SIGHUP', onSighup);
    // The IPC channel keeps the process alive; without it the worker exits once its sockets are closed.
    if (process.connected) process.disconnect();
  };
  sendToPrimary({ portcullis: 'hello' });

  try {
    const gateway = await startGateway(initial.config, { logger, ticketKeys: await init, ...(audit ? { audit } : {}) });
    installProcessGuard(logger, gateway.metrics);
    running = { gateway };
  } catch (err) {
    // The primary reports it, once for all workers; a user error (a port in use) needs no stack trace.
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ error: message }, 'gateway failed to start');
    sendToPrimary({ portcullis: 'failed', message });
    detach();
    return 1;
  }
  sendToPrimary({ portcullis: 'started', ports: [...running.gateway.ports] });
  await stopped;
  await running.gateway.close();
  // Disconnecting (or exiting) with a batch still in the channel would lose it.
  await audit?.sent();
  detach();
  return 0;
}

/**
 * A process at the other end that is exiting can still read as connected: the write then fails (EPIPE) after `send`
 * returned, and without a callback the failure is an 'error' event that ends this process. The other side's end is
 * reported where it belongs (the primary's 'exit' handler restarts or counts the worker; a worker whose primary is
 * gone drains on 'disconnect'), and a question that was lost times out, so the failed write itself needs nothing.
 */
function ignoreClosedChannel(): void {}

function sendToPrimary(msg: ToPrimary): void {
  if (process.connected) process.send!(msg, undefined, undefined, ignoreClosedChannel);
}

/** One batch of audit records to the primary, the trail's single writer. */
function relayAudit(records: object[], sent: () => void, logger: Logger): void {
  const lost = (err?: unknown) => {
    logger.error({ event: LOG_EVENTS.AUDIT_WRITE_FAILED, lost: records.length, err }, 'audit records could not be sent to the primary');
    sent();
  };
  if (!process.connected) return lost();
  process.send!({ portcullis: 'audit', records } satisfies ToPrimary, undefined, {}, (err) => (err ? lost(err) : sent()));
}

/** A reload the primary asked for: this worker loads the config itself and applies it whole, or refuses it. */
async function reloadWorker(gateway: Gateway, load: () => LoadedConfig): Promise<ReloadResult> {
  let loaded: LoadedConfig | undefined;
  try {
    loaded = load();
    await gateway.reload(loaded.config);
    return { ok: true };
  } catch (err) {
    return { ok: false, issues: rejectionIssues(err, loaded) };
  }
}
