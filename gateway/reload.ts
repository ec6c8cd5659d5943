// Hot reload: on SIGHUP, the admin endpoint, or a change to any input file (config, policy files,
// certificates, keys, bundles), the whole config is loaded and validated again and a new runtime is
// swapped in. A config that fails, at load or while building the runtime, is refused with a logged
// error and the last good one keeps serving. Certificate rotation by an external issuer (cert-manager,
// SPIRE rewriting files) is the same path: new handshakes get the new certificate, open connections
// and in-flight requests finish on the runtime they started with.
import fs from 'node:fs';
import type { Gateway } from './app.js';
import { ConfigError, type ConfigIssue, type LoadedConfig } from './config/load.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { redactUrls } from './core/secrets.js';

export type ReloadResult = { ok: true } | { ok: false; issues: readonly ConfigIssue[] | string };

/**
 * Why a config was refused, as logged and answered to `/reload`: issue messages quote the offending value, which
 * may be a URL with a password (`redis.url`) or a token in its query; those are redacted.
 */
export function rejectionIssues(err: unknown): readonly ConfigIssue[] | string {
  if (err instanceof ConfigError) return err.issues.map((issue) => ({ ...issue, message: redactUrls(issue.message) }));
  return redactUrls(err instanceof Error ? err.message : String(err));
}

export interface Reloader {
  reload(trigger: string): ReloadResult;
  close(): void;
}

export interface ReloaderOptions {
  load(): LoadedConfig;
  gateway: Gateway;
  /** The inputs of the config the gateway started with. */
  initial: LoadedConfig;
  logger: Logger;
  /**
   * Polling interval for input files. Polling (fs.watchFile) rather than inotify because Kubernetes
   * updates mounted ConfigMaps and Secrets by swapping a symlink, which inotify watches on the old
   * target never see. 0 disables watching.
   */
  watchIntervalMs: number;
  /** Several files of one update (a certificate and its key) arrive close together: wait for quiet. */
  settleMs?: number;
}

export function createReloader(options: ReloaderOptions): Reloader {
  const { logger } = options;
  let watched: readonly string[] = [];
  let pending: NodeJS.Timeout | undefined;

  const onFileChange = (curr: fs.Stats, prev: fs.Stats) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    clearTimeout(pending);
    pending = setTimeout(() => reload('file_change'), options.settleMs ?? 250);
    pending.unref();
  };
  const watch = (files: readonly string[]) => {
    if (options.watchIntervalMs <= 0) return;
    for (const file of watched) if (!files.includes(file)) fs.unwatchFile(file, onFileChange);
    for (const file of files) if (!watched.includes(file)) fs.watchFile(file, { interval: options.watchIntervalMs, persistent: false }, onFileChange);
    watched = files;
  };

  function reload(trigger: string): ReloadResult {
    let loaded: LoadedConfig;
    try {
      loaded = options.load();
      options.gateway.reload(loaded.config);
    } catch (err) {
      const issues = rejectionIssues(err);
      logger.error({ event: LOG_EVENTS.CONFIG_REJECTED, trigger, issues }, 'config rejected; the running config stays');
      return { ok: false, issues };
    }
    watch(loaded.inputs);
    logger.info({ event: LOG_EVENTS.CONFIG_LOADED, trigger, inputs: loaded.inputs.length }, 'config reloaded');
    return { ok: true };
  }

  watch(options.initial.inputs);
  return {
    reload,
    close() {
      clearTimeout(pending);
      for (const file of watched) fs.unwatchFile(file, onFileChange);
      watched = [];
    },
  };
}
