// Structured logging (pino). One canonical line per decision, event names as constants, secrets redacted.
import fs from 'node:fs';
import { pino, symbols, type Logger, type DestinationStream } from 'pino';

export const LOG_EVENTS = {
  REQUEST: 'REQUEST',
  AUTHZ_DRY_RUN: 'AUTHZ_DRY_RUN',
  DRY_RUN_WOULD_DENY: 'DRY_RUN_WOULD_DENY',
  AUTHZ_AUDIT: 'AUTHZ_AUDIT',
  JWKS_FETCH: 'JWKS_FETCH',
  JWKS_FETCH_FAILED: 'JWKS_FETCH_FAILED',
  TLS_REFUSED: 'TLS_REFUSED',
  CONNECTION_BUDGET: 'CONNECTION_BUDGET',
  HTTP2_ABUSE: 'HTTP2_ABUSE',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  PASSTHROUGH_CLOSED: 'PASSTHROUGH_CLOSED',
  EGRESS_DECISION: 'EGRESS_DECISION',
  EGRESS_HANDLER_FAILED: 'EGRESS_HANDLER_FAILED',
  AUDIT_SINK_FAILED: 'AUDIT_SINK_FAILED',
  CONFIG_LOADED: 'CONFIG_LOADED',
  CONFIG_REJECTED: 'CONFIG_REJECTED',
  LISTENING: 'LISTENING',
  LISTENER_RETIRED: 'LISTENER_RETIRED',
  SHUTDOWN: 'SHUTDOWN',
  CERT_ROTATED: 'CERT_ROTATED',
  RATE_LIMIT_REDIS_DOWN: 'RATE_LIMIT_REDIS_DOWN',
  RATE_LIMIT_REDIS_UP: 'RATE_LIMIT_REDIS_UP',
  RATE_LIMIT_STORE_FAILED: 'RATE_LIMIT_STORE_FAILED',
  ADMIN_REQUEST: 'ADMIN_REQUEST',
  WORKER_EXITED: 'WORKER_EXITED',
  AUDIT_WRITE_FAILED: 'AUDIT_WRITE_FAILED',
  TRACE_EXPORT_FAILED: 'TRACE_EXPORT_FAILED',
  UPSTREAM_EJECTED: 'UPSTREAM_EJECTED',
  UPSTREAM_DNS_FAILED: 'UPSTREAM_DNS_FAILED',
} as const;

export type LogEvent = (typeof LOG_EVENTS)[keyof typeof LOG_EVENTS];

/**
 * Paths pino censors. No wildcards: fast-redact walks wildcard paths on every line, which cost ~8 % of
 * the request path in the S3 profile, and no log line carries headers except under these keys.
 */
export const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["set-cookie"]',
  'token',
  'privateKey',
];

/**
 * Without a destination, lines go to stdout asynchronously and in batches of up to 4 KB or 100 ms, keeping one
 * write syscall per line off the request path (6 % of the CPU in the handshake-per-request profile). `flush`
 * before exiting; the lines still held are also written on a normal exit.
 */
const STDOUT_BATCH_BYTES = 4096;
const STDOUT_BATCH_MS = 100;
const STDOUT_FD = 1;

/**
 * The batching, in front of sonic-boom: lines are kept in an array and handed over as one joined string per batch.
 * sonic-boom's own batching (`minLength`) appends each line to its pending string and measures that string with
 * Buffer.byteLength, which flattens (copies) the whole pending string on every line: up to 16 KB copied per ~600-byte
 * access line, a third of all the bytes the S3 request path allocated (sampling heap profile; docs/performance.md,
 * "Memory and tail"). Each batch here is one flat string.
 */
class LineBatches implements DestinationStream {
  private lines: string[] = [];
  private length = 0;

  constructor(private readonly out: ReturnType<typeof pino.destination>) {
    setInterval(() => this.handOver(), STDOUT_BATCH_MS).unref();
    batches.add(this);
  }

  write(line: string): void {
    this.lines.push(line);
    this.length += line.length;
    if (this.length >= STDOUT_BATCH_BYTES) this.handOver();
  }

  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.out.flush(cb);
  }

  /**
   * On exit. A batch handed to sonic-boom here would start an asynchronous write that an exiting process may never
   * finish (the line of an error that ends the process was lost that way on Node 24): what sonic-boom holds is written
   * first, then this batch, both synchronously.
   */
  flushSync(): void {
    this.out.flushSync();
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.length = 0;
    for (let offset = 0; offset < bytes.length; ) {
      try {
        offset += fs.writeSync(STDOUT_FD, bytes, offset);
      } catch (err) {
        // A non-blocking pipe that is full: wait for the reader, as sonic-boom's own flushSync does.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
    }
  }

  private handOver(): void {
    if (this.lines.length === 0) return;
    this.out.write(this.lines.join(''));
    this.lines = [];
    this.length = 0;
  }
}

/**
 * A gate for floods of one log line: true at most once per `ms` (each refusal or failure is still counted by its
 * metric), so a flood costs the log one line a second instead of one per event.
 */
export function atMostEvery(ms: number): () => boolean {
  let last = -Infinity;
  return () => {
    const now = performance.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}

/** Every stdout batcher, written out synchronously on exit (one listener for all of them). */
const batches = new Set<LineBatches>();
process.once('exit', () => {
  for (const batch of batches) batch.flushSync();
});

function stdoutBatches(): DestinationStream {
  // minLength 0: sonic-boom writes a batch as soon as the previous write is done. Batches that arrive during a write
  // are joined into its next one, up to its maxWrite (16 KB): one copy per batch, not per line. Keeping each batch a
  // write of its own was tried: at ~10k requests/s the one-write-at-a-time loop fell behind the log and the backlog
  // grew without bound (S3 soak, Node 24: RSS 213 → 278 MB in 30 s).
  return new LineBatches(pino.destination({ dest: STDOUT_FD, sync: false, minLength: 0 }));
}

/**
 * `,"time":"2026-11-30T09:48:13.123Z"` (ISO 8601, UTC), the same on stdout and in the audit file. pino's
 * `stdTimeFunctions.isoTime` formats a Date per line, which cost 2 % of the request path; lines within one
 * millisecond share one string here.
 */
function isoTimeCachedPerMs(): () => string {
  let lastMs = -1;
  let last = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      last = `,"time":"${new Date(now).toISOString()}"`;
    }
    return last;
  };
}

export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { svc: 'portcullis' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: isoTimeCachedPerMs(),
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? stdoutBatches(),
  );
}

/** One fixed-shape record at `info`, as a line of `logger`. */
export type RecordLine = (record: object) => void;

/** What pino keeps on a logger, read through its public `pino.symbols` to write the same line it would. */
interface PinoInternals {
  [symbols.lsCacheSym]: Record<number, string>;
  [symbols.timeSym]: () => string;
  [symbols.chindingsSym]: string;
  [symbols.endSym]: string;
  [symbols.streamSym]: DestinationStream & { [symbols.needsMetadataGsym]?: boolean };
  [symbols.mixinSym]: unknown;
  [symbols.nestedKeySym]: unknown;
  [symbols.formattersSym]: { log?: unknown };
  [symbols.hooksSym]: { streamWrite?: unknown };
}

const INFO = pino.levels.values.info!;

/**
 * The per-request line (the ingress access line): byte for byte what `logger.info(record)` writes, but the record is
 * serialized by one `JSON.stringify` instead of pino's field-by-field serializer (S1 +6 % per core in `--base` A/B
 * runs, docs/performance.md). Only for records that never hold secrets, since pino's redaction does not run here, and
 * that always have a field. A logger with a mixin, a log formatter, a nested key, a write hook or a stream that wants
 * metadata, whose lines pino shapes further, gets `logger.info` itself.
 */
export function recordLine(logger: Logger): RecordLine {
  const internals = logger as unknown as PinoInternals;
  const stream = internals[symbols.streamSym];
  const reshaped =
    internals[symbols.mixinSym] ||
    internals[symbols.nestedKeySym] ||
    internals[symbols.formattersSym].log ||
    internals[symbols.hooksSym].streamWrite ||
    stream[symbols.needsMetadataGsym];
  if (reshaped) return (record) => logger.info(record);
  const head = internals[symbols.lsCacheSym][INFO]!;
  const bindings = internals[symbols.chindingsSym];
  const time = internals[symbols.timeSym];
  const end = internals[symbols.endSym];
  return (record) => {
    // Checked per line: a reload can change the level of a running logger.
    if (logger.levelVal > INFO) return;
    // `{"event":…}` → `,"event":…`: the record's fields follow the bindings, and pino's own end closes the line.
    stream.write(`${head}${time()}${bindings},${JSON.stringify(record).slice(1, -1)}${end}`);
  };
}

export type { Logger };
