// OpenTelemetry tracing: one SERVER span per ingress request and per egress attempt, the stages as span events
// (cheaper than child spans, and a request's stages never overlap), W3C trace context and B3 accepted, the gateway's
// span handed to the upstream as the parent, OTLP/HTTP export in batches off the request path.
// Off (the default), `start` returns one shared no-op trace: no span, no context, no header read, and the SDK is
// never loaded: it is ~5 MB of heap and code (otel-tracing.ts holds it, imported when a config turns tracing on).
import type { IncomingMessage } from 'node:http';
import { DEFAULTS } from '../config/defaults.js';
import type { TracingConfig } from '../config/operations-schema.js';
import type { EgressRecord } from '../egress/stages/audit.js';
import type { Exchange, Request } from '../ingress/exchange.js';
import type { OutgoingHeaders } from '../ingress/stages/sanitize-headers.js';
import type { Logger } from './log.js';

/** The trace of one ingress request, carried on its Exchange. */
export interface ExchangeTrace {
  /** The W3C trace id (32 hex digits); undefined when tracing is off. */
  readonly traceId: string | undefined;
  /** A stage passed: a timestamped event on the span. */
  stage(name: string): void;
  /** Replaces whatever trace context the client sent with the gateway's span, for the upstream request. */
  inject(headers: OutgoingHeaders): void;
  /** Ends the span with what the exchange record says (status, decision, route, principal, error code). */
  end(ex: Exchange): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** The server span of an ingress request (the shared no-op trace when off). */
  start(req: Request): ExchangeTrace;
  /** Records an egress attempt as a span from its audit record; returns the record with its `traceId` (as is when off). */
  egress(req: IncomingMessage, record: EgressRecord): EgressRecord;
  /** Exports what is queued, waiting at most the export timeout; then nothing more is recorded. */
  shutdown(): Promise<void>;
}

const noop = (): void => undefined;

/** Tracing off: one frozen object for every request, so a request allocates nothing for it. */
export const NO_TRACE: ExchangeTrace = Object.freeze({ traceId: undefined, stage: noop, inject: noop, end: noop });

export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  start: () => NO_TRACE,
  egress: (_req: IncomingMessage, record: EgressRecord) => record,
  shutdown: async () => undefined,
});

/** Where each setting comes from: the config file, else the standard `OTEL_*` variable, else our default. */
export interface TracingSettings {
  /** Undefined: the exporter reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`, or uses `http://localhost:4318/v1/traces`. */
  endpoint: string | undefined;
  /** Undefined: the SDK builds the sampler from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`. */
  samplingRatio: number | undefined;
  serviceName: string;
}

export function tracingSettings(config: TracingConfig, env: NodeJS.ProcessEnv = process.env): TracingSettings {
  const samplerFromEnv = config.samplingRatio === undefined && env.OTEL_TRACES_SAMPLER !== undefined;
  return {
    endpoint: config.endpoint,
    samplingRatio: samplerFromEnv ? undefined : (config.samplingRatio ?? DEFAULTS.tracingSamplingRatio),
    serviceName: config.serviceName ?? (env.OTEL_SERVICE_NAME || DEFAULTS.tracingServiceName),
  };
}

/** The tracing a config asks for: TRACING_OFF, or the SDK loaded on first use. */
export async function createTracing(config: TracingConfig | undefined, logger: Logger): Promise<Tracing> {
  if (!config?.enabled) return TRACING_OFF;
  return (await import('./otel-tracing.js')).createOtelTracing(config, logger);
}
