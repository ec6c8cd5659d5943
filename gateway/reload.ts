// Hot reload: on SIGHUP, the admin endpoint, or a change to any input file (config, policy files,
// certificates, keys, bundles), the whole config is loaded and validated again and applied whole to every part
// (core/reloadable.ts): the ingress runtime, the listeners, the admin plane. A config that fails, at load, while
// building the new parts or binding their sockets, is refused with a logged error and counted, and the last good
// one keeps serving entirely. Certificate rotation by an external issuer (cert-manager, SPIRE rewriting files) is
// the same path: new handshakes get the new certificate, open connections and in-flight requests finish on the
// runtime they started with. One reload runs at a time; triggers that arrive meanwhile wait their turn.
import fs from 'node:fs';
import { ConfigError, type ConfigIssue, type LoadedConfig } from './config/load.js';
import { canonicalJson, configHash } from './config/hash.js';
import type { Config } from './config/schema.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import type { ReloadMetrics } from './core/metrics.js';
import { ReloadRefused, prepareAll, type Reloadable } from './core/reloadable.js';
import { redactUrls } from './core/secrets.js';

export type ReloadResult = { ok: true; hash?: string } | { ok: false; issues: readonly ConfigIssue[] | string };

/**
 * Why a config was refused, as logged and answered to `/reload`: issue messages quote the offending value, which
 * may be a URL with a password (`redis.url`) or a token in its query; those are redacted.
 */
export function rejectionIssues(err: unknown, loaded?: LoadedConfig): readonly ConfigIssue[] | string {
  if (err instanceof ConfigError) return err.issues.map((issue) => ({ ...issue, message: redactUrls(issue.message) }));
  // A refusal that names its config field (a port that cannot be bound) is located like a load issue.
  if (err instanceof ReloadRefused && loaded) return [{ file: loaded.files[0]!, path: err.path, message: redactUrls(err.message) }];
  return redactUrls(err instanceof Error ? err.message : String(err));
}

export interface Reloader {
  reload(trigger: string): Promise<ReloadResult>;
  /** SHA-256 of the config in service (config/hash.ts). */
  hash(): string;
  close(): void;
}

export interface ReloaderOptions {
  load(): LoadedConfig;
  /** What a reload applies, whole: the gateway, and the admin plane where it runs in the same process. */
  parts: readonly Reloadable[];
  /** The inputs of the config the gateway started with. */
  initial: LoadedConfig;
  logger: Logger;
  /** Reload outcomes and the running config's hash, as metrics. */
  metrics?: ReloadMetrics;
  /**
   * Polling interval for input files. Polling (fs.watchFile) rather than inotify because Kubernetes
   * updates mounted ConfigMaps and Secrets by swapping a symlink, which inotify watches on the old
   * target never see. 0 disables watching.
   */
  watchIntervalMs: number;
  /** Several files of one update (a certificate and its key) arrive close together: wait for quiet. */
  settleMs?: number;
}

/**
 * Settings the process reads once, at start: the log level (the loggers of long-lived parts are made from it then)
 * and the reload settings themselves. A reload that changes them is refused, naming the field, rather than reported
 * applied while the old value goes on working.
 */
const RESTART_ONLY = ['log', 'reload'] as const satisfies readonly (keyof Config)[];

function restartOnlySettings(running: Config): Reloadable {
  return {
    prepare(next) {
      const changed = RESTART_ONLY.find((key) => canonicalJson(running[key] ?? {}) !== canonicalJson(next[key] ?? {}));
      if (changed) return Promise.reject(new ReloadRefused(`/${changed}`, `the ${changed} settings change only with a restart`));
      return Promise.resolve({ commit: () => undefined, abort: () => Promise.resolve() });
    },
  };
}

export function createReloader(options: ReloaderOptions): Reloader {
  const { logger } = options;
  const parts = [restartOnlySettings(options.initial.config), ...options.parts];
  let watched: readonly string[] = [];
  let pending: NodeJS.Timeout | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let hash = configHash(options.initial);
  options.metrics?.active(hash);

  const onFileChange = (curr: fs.Stats, prev: fs.Stats) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    clearTimeout(pending);
    pending = setTimeout(() => void reload('file_change'), options.settleMs ?? 250);
    pending.unref();
  };
  const watch = (files: readonly string[]) => {
    if (options.watchIntervalMs <= 0) return;
    for (const file of watched) if (!files.includes(file)) fs.unwatchFile(file, onFileChange);
    for (const file of files) if (!watched.includes(file)) fs.watchFile(file, { interval: options.watchIntervalMs, persistent: false }, onFileChange);
    watched = files;
  };

  async function apply(trigger: string): Promise<ReloadResult> {
    let loaded: LoadedConfig | undefined;
    try {
      loaded = options.load();
      (await prepareAll(parts, loaded.config)).commit();
    } catch (err) {
      const issues = rejectionIssues(err, loaded);
      options.metrics?.reload('rejected');
      logger.error({ event: LOG_EVENTS.CONFIG_REJECTED, trigger, issues }, 'config rejected; the running config stays');
      return { ok: false, issues };
    }
    hash = configHash(loaded);
    options.metrics?.reload('success');
    options.metrics?.active(hash);
    watch(loaded.inputs);
    logger.info({ event: LOG_EVENTS.CONFIG_LOADED, trigger, inputs: loaded.inputs.length, hash }, 'config reloaded');
    return { ok: true, hash };
  }

  function reload(trigger: string): Promise<ReloadResult> {
    const result = queue.then(() => apply(trigger));
    queue = result;
    return result;
  }

  watch(options.initial.inputs);
  return {
    reload,
    hash: () => hash,
    close() {
      clearTimeout(pending);
      for (const file of watched) fs.unwatchFile(file, onFileChange);
      watched = [];
    },
  };
}
