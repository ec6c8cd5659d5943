// The egress audit trail: exactly one record per attempt (Smokescreen's CANONICAL-PROXY-DECISION line), to the
// process log and to a JSON-lines file. Denials are written when they are decided; accepted tunnels and forwarded
// requests when they end, so the record carries byte counts and duration.
// Host names and SNI values are written as JSON strings by pino, so a hostile name cannot forge a log line
// (CVE-2024-45808: SNI log injection).
import { once } from 'node:events';
import { pino } from 'pino';
import { createLogger, LOG_EVENTS, type Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { AuditTrail } from '../../audit/trail.js';
import type { Identity } from './identify.js';

/** `unparsed`: a request Node's HTTP parser refused before it had a method. */
export type ProxyType = 'connect' | 'http' | 'originate' | 'unparsed';

/** Field names as in the ingress access line (`requestId`, `remote`, `bytesIn`, `bytesOut`, `durationMs`). */
export interface EgressRecord {
  requestId: string;
  identity: string;
  identityKind: Identity['kind'];
  proxyType: ProxyType;
  /** The caller's address. */
  remote: string | undefined;
  /** As the client asked for it, canonicalized; undefined when the request was too malformed to say. */
  host: string | undefined;
  port: number | undefined;
  /** The address dialled (or the blocked one that caused the refusal). */
  address?: string;
  allow: boolean;
  /** Snake case: `allowed_by_rule`, `no_rule_matched`, an address class (`loopback`, …), `sni_mismatch`, … */
  reason: string;
  /** The error code the client saw, for refusals. */
  code?: string;
  rule?: string;
  wouldDeny?: boolean;
  sni?: string;
  /** Why a ClientHello was refused as malformed (the parser's error). */
  detail?: string;
  /** How a tunnel ended (`closed`, `idle_timeout`, `shutdown`, `revoked`, …). */
  end?: string;
  /** Upstream response status of a forwarded HTTP request. */
  status?: number;
  /** Client → upstream. */
  bytesIn?: number;
  /** Upstream → client. */
  bytesOut?: number;
  durationMs: number;
  /** Set on records that need a human: byte budget exceeded, SNI mismatch. */
  alert?: boolean;
  /** The attempt's trace, when tracing is on. */
  traceId?: string;
}

export interface AuditOptions {
  /** JSON-lines file; created with its folder if missing. */
  file?: string;
}

export interface AuditDeps {
  logger: Logger;
  /** Counts every attempt by destination host and decision. */
  metrics?: Pick<Metrics, 'egress'>;
  /** The tamper-evident trail (`audit` in the config), which gets every record as well. */
  trail?: AuditTrail | undefined;
}

export interface Audit {
  record(r: EgressRecord): void;
  /** Writes everything buffered to the file synchronously and closes it; call once, on shutdown. */
  close(): Promise<void>;
}

/**
 * The file is opened with the first record, not here: building a runtime (at start, at every reload, in `validate`)
 * has no side effect, and a runtime that is never used never touches the disk.
 */
export function createAudit(options: AuditOptions, deps: AuditDeps): Audit {
  let destination: ReturnType<typeof pino.destination> | undefined;
  let fileLog: Logger | undefined;
  let closed = false;
  let ready = false;
  let failed = false;

  function open(file: string): Logger {
    // Async writes keep the request path off the disk; close() flushes them so an accepted connection is never
    // missing from the file after a graceful shutdown.
    destination = pino.destination({ dest: file, sync: false, mkdir: true });
    destination.once('ready', () => {
      ready = true;
    });
    // The process log still has every record; a broken file sink must not take the gateway down.
    destination.on('error', (err) => {
      failed = true;
      deps.logger.error({ event: LOG_EVENTS.AUDIT_SINK_FAILED, err, file }, 'egress audit file failed');
    });
    return createLogger('info', destination);
  }

  return {
    record(r) {
      deps.metrics?.egress(r.host ?? '', r.allow ? 'allow' : 'deny', r.code ?? 'ok', r.bytesIn ?? 0, r.bytesOut ?? 0);
      const line = { event: LOG_EVENTS.EGRESS_DECISION, ...r };
      const level = r.alert ? 'warn' : 'info';
      deps.logger[level](line, 'egress decision');
      deps.trail?.append('egress', line);
      if (closed || failed || options.file === undefined) return;
      fileLog ??= open(options.file);
      fileLog[level](line, 'egress decision');
    },
    async close() {
      closed = true;
      if (failed || !destination) return;
      const open = destination;
      destination = undefined;
      // flushSync throws while the file is still being opened.
      if (!ready) await once(open, 'ready');
      open.flushSync();
      const finished = once(open, 'close');
      open.end();
      await finished;
    },
  };
}
