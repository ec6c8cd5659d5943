// The audit trail's writer: seals records into the chain (chain.ts), appends them to the audit file, rotates it by
// size with the chain running on, and writes signed checkpoints to their own file.
//
// Records are held for up to AUDIT_BATCH_MS (batching.ts), then sealed and written together by one synchronous write:
// the request path only pushes to an array, a disk error is known within that time (`onWriteFailure: refuse`), and
// a failed write is cut back off the file so the chain never holds a torn line. The chain head advances only when
// the bytes are on the file; records that could not be written wait (up to MAX_PENDING) and go out when the disk
// takes them again, behind an `audit_gap` record should any have been dropped.
import fs from 'node:fs';
import path from 'node:path';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { AuditConfig } from '../config/operations-schema.js';
import { DEFAULTS } from '../config/defaults.js';
import { fileDigest } from '../config/hash.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { ReloadRefused, type Reloadable } from '../core/reloadable.js';
import type { Metrics } from '../core/metrics.js';
import { batchClock } from './batching.js';
import { canonicalJson, EMPTY_CHAIN, seal, signCheckpoint, type ChainHead } from './chain.js';

export type AuditSource = 'ingress' | 'egress';

export interface AuditTrail {
  /** Record allowed ingress requests too (`audit.ingressAllows`). */
  readonly ingressAllows: boolean;
  append(source: AuditSource, fields: object): void;
  /** True while records cannot be written and `onWriteFailure` is `refuse`: new traffic is answered 503. */
  refusing(): boolean;
  /** Writes what is pending and a last checkpoint, then closes the files; call once, on shutdown. */
  close(): void;
}

/** The writer: the trail, and the entry for records stamped in another process (multi-process mode's workers). */
export interface AuditWriter extends AuditTrail {
  /** A record `stamp` made elsewhere; it is chained as it is. */
  appendRecord(record: object): void;
}

export interface AuditTrailDeps {
  logger: Logger;
  metrics?: Pick<Metrics, 'auditWriteFailure'>;
  /** Told each time `refusing()` changes (multi-process mode passes it on to the workers). */
  onRefusingChange?(refusing: boolean): void;
}

/** A record's common head: where it comes from and when it was recorded (before any batching or relaying). */
export function stamp(source: AuditSource, fields: object): object {
  return { source, time: new Date().toISOString(), ...fields };
}

/** A reload cannot move the trail to another file or key mid-chain: these settings are read once, at start. */
export function sameAuditConfig(a: AuditConfig | undefined, b: AuditConfig | undefined): boolean {
  return canonicalJson(a ?? {}) === canonicalJson(b ?? {});
}

/**
 * The trail's part in a reload: it prepares nothing, and refuses a config whose `audit` settings differ (restart),
 * or whose checkpoint key file now holds another key: the running trail read its key at start and would go on
 * signing with the old one while the reload reported the new one applied.
 */
export function auditSettings(running: AuditConfig | undefined): Reloadable {
  const keyFile = running?.checkpoints?.keyFile;
  const keyDigest = keyFile === undefined ? undefined : fileDigest(keyFile);
  return {
    prepare(next) {
      if (!sameAuditConfig(running, next.audit)) return Promise.reject(new ReloadRefused('/audit', 'the audit trail settings change only with a restart'));
      if (keyFile !== undefined && fileDigest(keyFile) !== keyDigest) {
        return Promise.reject(new ReloadRefused('/audit/checkpoints/keyFile', 'the checkpoint signing key changes only with a restart'));
      }
      return Promise.resolve({ commit: () => undefined, abort: () => Promise.resolve() });
    },
  };
}

/** Records kept while the disk refuses them; past this, later ones are dropped and counted in an `audit_gap` record. */
const MAX_PENDING = 10_000;
/** Records name principals, paths and addresses: readable by the gateway's user only. */
const FILE_MODE = 0o600;
/** How often a failing write is retried while no traffic triggers one. */
const RETRY_MS = 1_000;

/** The checkpoint signing key; throws with a clear message when the file does not hold an Ed25519 private key. */
export function readSigningKey(file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(fs.readFileSync(file));
  } catch (err) {
    throw new Error(`audit.checkpoints.keyFile: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`audit.checkpoints.keyFile: an Ed25519 key is needed, this is ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

export function createAuditTrail(config: AuditConfig, deps: AuditTrailDeps): AuditWriter {
  const file = config.file;
  const maxFileBytes = config.maxFileBytes ?? DEFAULTS.auditMaxFileBytes;
  const refuseOnFailure = (config.onWriteFailure ?? DEFAULTS.auditOnWriteFailure) === 'refuse';
  const checkpoints = config.checkpoints && {
    file: config.checkpoints.file,
    key: readSigningKey(config.checkpoints.keyFile),
    everyRecords: config.checkpoints.everyRecords ?? DEFAULTS.auditCheckpointEveryRecords,
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (checkpoints) fs.mkdirSync(path.dirname(checkpoints.file), { recursive: true });
  let head = chainHeadOf(file);
  let fd = fs.openSync(file, 'a', FILE_MODE);
  let size = fs.fstatSync(fd).size;
  let pending: object[] = [];
  let dropped = 0;
  let failing = false;
  let uncheckpointed = 0;
  const batch = batchClock(flush);
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  const timer =
    checkpoints &&
    setInterval(() => {
      flush();
      if (uncheckpointed > 0) checkpoint();
    }, (config.checkpoints?.everySeconds ?? DEFAULTS.auditCheckpointEverySeconds) * 1000).unref();

  function flush(): void {
    batch.reset();
    if (pending.length === 0 && dropped === 0) return;
    const gap = dropped > 0 ? [{ source: 'audit', event: 'AUDIT_GAP', time: new Date().toISOString(), dropped }] : [];
    let next = head;
    const lines: string[] = [];
    for (const fields of [...gap, ...pending]) {
      const sealed = seal(next, fields);
      lines.push(sealed.line);
      next = sealed.head;
    }
    const bytes = Buffer.from(`${lines.join('\n')}\n`);
    if (!write(bytes)) return;
    head = next;
    size += bytes.length;
    uncheckpointed += lines.length;
    pending = [];
    dropped = 0;
    if (checkpoints && uncheckpointed >= checkpoints.everyRecords) checkpoint();
    if (size >= maxFileBytes) rotate();
  }

  /** Writes all of `bytes` or, on failure, cuts the file back to where it was and reports it. */
  function write(bytes: Buffer): boolean {
    try {
      for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset);
    } catch (err) {
      try {
        fs.ftruncateSync(fd, size);
      } catch {
        // A device that cannot be truncated (or a file gone read-only) keeps its torn line; verify will name it.
      }
      writeFailed(err, 'records');
      return false;
    }
    if (failing) {
      deps.logger.warn({ event: LOG_EVENTS.AUDIT_WRITE_FAILED, file, recovered: true }, 'audit records are being written again');
      if (refuseOnFailure) deps.onRefusingChange?.(false);
    }
    failing = false;
    clearTimeout(retry);
    retry = undefined;
    return true;
  }

  function writeFailed(err: unknown, what: 'records' | 'checkpoint'): void {
    deps.metrics?.auditWriteFailure();
    if (!failing || what === 'checkpoint') {
      deps.logger.error(
        { event: LOG_EVENTS.AUDIT_WRITE_FAILED, file: what === 'records' ? file : checkpoints?.file, err, pending: pending.length, refusing: refuseOnFailure },
        refuseOnFailure ? 'audit trail cannot be written: refusing traffic until it can' : 'audit trail cannot be written: serving on, records are held and then dropped',
      );
    }
    if (what === 'checkpoint') return;
    if (!failing && refuseOnFailure) deps.onRefusingChange?.(true);
    failing = true;
    if (!retry && !closed) retry = setTimeout(() => {
      retry = undefined;
      flush();
    }, RETRY_MS).unref();
  }

  function checkpoint(): void {
    if (!checkpoints || head.seq === 0) return;
    const line = signCheckpoint(checkpoints.key, { seq: head.seq - 1, hash: head.hash }, new Date().toISOString());
    try {
      fs.appendFileSync(checkpoints.file, `${line}\n`, { mode: FILE_MODE });
      uncheckpointed = 0;
    } catch (err) {
      writeFailed(err, 'checkpoint');
    }
  }

  function rotate(): void {
    try {
      fs.closeSync(fd);
      fs.renameSync(file, `${file}.${nextRotationNumber(file)}`);
      fd = fs.openSync(file, 'a', FILE_MODE);
      size = 0;
    } catch (err) {
      // Rotation failing is not a lost record: the file grows on, and the next flush tries again.
      deps.logger.error({ event: LOG_EVENTS.AUDIT_WRITE_FAILED, file, err }, 'audit file rotation failed');
      fd = fs.openSync(file, 'a', FILE_MODE);
    }
  }

  function appendRecord(record: object): void {
    if (closed) return;
    if (pending.length >= MAX_PENDING) {
      dropped++;
      return;
    }
    pending.push(record);
    // While writes fail, the retry timer flushes.
    if (!failing) batch.added(pending.length);
  }

  return {
    ingressAllows: config.ingressAllows === true,
    append: (source, fields) => appendRecord(stamp(source, fields)),
    appendRecord,
    refusing: () => failing && refuseOnFailure,
    close() {
      if (closed) return;
      flush();
      closed = true;
      clearInterval(timer);
      clearTimeout(retry);
      if (uncheckpointed > 0) checkpoint();
      if (pending.length > 0 || dropped > 0) {
        deps.logger.error({ event: LOG_EVENTS.AUDIT_WRITE_FAILED, file, lost: pending.length + dropped }, 'audit records could not be written before shutdown');
      }
      fs.closeSync(fd);
    },
  };
}

/**
 * Where the chain stands on disk: after the last record of the audit file or, when it is empty (just rotated), of
 * the newest rotated file. A last line that is not a record (a torn write by a crash) stops the start: appending
 * after it would hide the damage, and the operator must look first.
 */
function chainHeadOf(file: string): ChainHead {
  for (const candidate of [file, ...rotatedFiles(file).reverse()]) {
    const last = lastLine(candidate);
    if (last === undefined) continue;
    let record: { seq?: unknown; hash?: unknown };
    try {
      record = JSON.parse(last) as typeof record;
    } catch {
      record = {};
    }
    if (!Number.isSafeInteger(record.seq) || typeof record.hash !== 'string') {
      throw new Error(`audit.file: the last line of ${candidate} is not an audit record (torn by a crash?); check it with 'portcullis audit verify' and move it aside`);
    }
    return { seq: (record.seq as number) + 1, hash: record.hash };
  }
  return EMPTY_CHAIN;
}

/** Rotated files `<file>.<n>`, oldest first. */
function rotatedFiles(file: string): string[] {
  const base = path.basename(file);
  const numbered = safeReaddir(path.dirname(file))
    .map((name) => (name.startsWith(`${base}.`) ? Number(name.slice(base.length + 1)) : NaN))
    .filter((n) => Number.isSafeInteger(n) && n > 0);
  return numbered.sort((a, b) => a - b).map((n) => `${file}.${n}`);
}

function nextRotationNumber(file: string): number {
  const last = rotatedFiles(file).at(-1);
  return last === undefined ? 1 : Number(last.slice(file.length + 1)) + 1;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The last non-empty line of a regular file, reading only its end; undefined for a missing or empty file. */
function lastLine(file: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if (!stat.isFile() || stat.size === 0) return undefined;
  const fd = fs.openSync(file, 'r');
  try {
    // Records are a few hundred bytes; read back until one whole line is in hand.
    for (let span = 64 * 1024; ; span *= 4) {
      const start = Math.max(0, stat.size - span);
      const buf = Buffer.alloc(stat.size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      const text = buf.toString('utf8').replace(/\n+$/, '');
      const cut = text.lastIndexOf('\n');
      if (cut >= 0 || start === 0) return text.slice(cut + 1);
    }
  } finally {
    fs.closeSync(fd);
  }
}
