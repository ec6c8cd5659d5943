// Tracing on (tracing.ts): the OpenTelemetry SDK behind the Tracing interface. Imported only when a config enables
// tracing, so a gateway without it never loads the SDK, the OTLP exporter or the propagators.
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import { CompositePropagator, setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, type Sampler } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/operations-schema.js';
import type { EgressRecord } from '../egress/stages/audit.js';
import type { Exchange, Request } from '../ingress/exchange.js';
import type { OutgoingHeaders } from '../ingress/stages/sanitize-headers.js';
import { atMostEvery, LOG_EVENTS, type Logger } from './log.js';
import { redactUrls } from './secrets.js';
import { tracingSettings, type ExchangeTrace, type Tracing } from './tracing.js';

/**
 * Every header a client may carry a trace context in. With tracing on they are all removed from the upstream
 * request before the gateway's own context is written, so no stale parent (say, a B3 header next to the new
 * `traceparent`) reaches the upstream.
 */
const TRACE_HEADERS = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'];

/** Only headers present are deleted: a `delete` turns the object into a slow dictionary for everything after it. */
function dropClientContext(headers: OutgoingHeaders): void {
  for (const name of TRACE_HEADERS) if (headers[name] !== undefined) delete headers[name];
}

/**
 * W3C trace context and B3 in. When a request carries both, W3C wins (the later propagator overwrites). Out:
 * `traceparent`/`tracestate` and the single `b3` header, so upstreams on either format see the gateway's span.
 */
const propagator: TextMapPropagator = new CompositePropagator({
  propagators: [new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }), new W3CTraceContextPropagator()],
});

const SHUTDOWN_EXPORT_MS = 2_000;

/** A failing collector is reported at most once a minute: the batches keep failing as long as it is down. */
const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;

/** Tracing on: the OpenTelemetry SDK, its OTLP/HTTP exporter and the propagators. */
export function createOtelTracing(config: TracingConfig, logger: Logger): Tracing {
  const settings = tracingSettings(config);
  const exporter = new OTLPTraceExporter({
    ...(settings.endpoint ? { url: settings.endpoint } : {}),
    ...(config.headers ? { headers: config.headers } : {}),
  });
  // A configured ratio is applied to new traces by `rootSampled` below, before the SDK is asked for anything; the
  // SDK then samples the roots it is given and follows the parent's flag for the rest (parent-based ratio).
  const ratio = settings.samplingRatio;
  const sampler: Sampler | undefined = ratio === undefined ? undefined : new ParentBasedSampler({ root: new AlwaysOnSampler() });
  // The batch processor's queue is bounded (OTEL_BSP_MAX_QUEUE_SIZE, 2048): spans past it are dropped, never
  // waited for, and each export gives up after OTEL_BSP_EXPORT_TIMEOUT; a dead collector costs requests nothing.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    ...(sampler ? { sampler } : {}),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  reportExportFailures(logger);
  const tracer = provider.getTracer('portcullis');
  return {
    enabled: true,
    start: (req) => startIngress(tracer, ratio, req),
    egress: (req, record) => recordEgress(tracer, ratio, req, record),
    shutdown: () => shutdown(provider, logger),
  };
}

/**
 * The last spans are exported on shutdown, but a collector that does not answer must neither fail nor hold up the
 * gateway's exit for the whole export timeout: after SHUTDOWN_EXPORT_MS what is left is dropped.
 */
async function shutdown(provider: BasicTracerProvider, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const exported = provider.shutdown().catch((err: unknown) => {
    logger.warn({ event: LOG_EVENTS.TRACE_EXPORT_FAILED, error: redactUrls(err instanceof Error ? err.message : String(err)) }, 'last spans not exported');
  });
  // Not unref'd (it is cleared below): the stop awaits this bound, and the audit close after it.
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, SHUTDOWN_EXPORT_MS);
  });
  await Promise.race([exported, late]);
  clearTimeout(timer);
}

function reportExportFailures(logger: Logger): void {
  const logNow = atMostEvery(EXPORT_FAILURE_LOG_INTERVAL_MS);
  // The SDK reports failed exports to one process-wide handler; the latest tracing built owns it.
  setGlobalErrorHandler((err) => {
    if (!logNow()) return;
    const message = err instanceof Error ? err.message : String(err);
    logger.warn({ event: LOG_EVENTS.TRACE_EXPORT_FAILED, error: redactUrls(message) }, 'trace export failed; spans are being dropped');
  });
}

function startIngress(tracer: Tracer, ratio: number | undefined, req: Request): ExchangeTrace {
  const parent = parentOf(req);
  if (!sampledHere(ratio, parent)) return new UnsampledRoot();
  const span = tracer.startSpan(req.method ?? 'HTTP', { kind: SpanKind.SERVER }, parent);
  return new SpanTrace(span, trace.setSpan(parent, span), req);
}

/** The client's trace context; most requests carry none, and then no propagator runs. */
function parentOf(req: Pick<IncomingMessage, 'headers'>): Context {
  const h = req.headers;
  if (h.traceparent === undefined && h.b3 === undefined && h['x-b3-traceid'] === undefined) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, h, defaultTextMapGetter);
}

/**
 * Whether the SDK should see this request: always when a parent decides (its flag is followed), or when the sampler
 * comes from `OTEL_TRACES_SAMPLER`; a new trace under a configured ratio, with that probability. Unsampled new
 * traces are the common case at a low ratio, and for them the SDK would still build a span, its context and ids,
 * and two propagators would serialize them: about 5 % of an S3 request's CPU in the bench's profile.
 */
function sampledHere(ratio: number | undefined, parent: Context): boolean {
  return ratio === undefined || trace.getSpanContext(parent) !== undefined || Math.random() < ratio;
}

/**
 * A new trace not sampled: what the SDK's non-recording root span would give the upstream and the logs (a trace id,
 * a span id, flags 00 in `traceparent` and `b3`), made by hand without the SDK.
 */
class UnsampledRoot implements ExchangeTrace {
  readonly traceId = randomHex(16);
  private readonly spanId = randomHex(8);

  stage(): void {}

  inject(headers: OutgoingHeaders): void {
    dropClientContext(headers);
    headers.traceparent = `00-${this.traceId}-${this.spanId}-00`;
    headers.b3 = `${this.traceId}-${this.spanId}-0`;
  }

  end(): void {}
}

/** Ids from a pool refilled 4 KiB at a time: one system call per ~170 traces instead of one per id. */
const idPool = Buffer.allocUnsafe(4096);
let idPoolOffset = idPool.length;

function randomHex(bytes: number): string {
  if (idPoolOffset + bytes > idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  const hex = idPool.toString('hex', idPoolOffset, idPoolOffset + bytes);
  idPoolOffset += bytes;
  // All-zero ids are invalid in W3C trace context; 2^-64 at worst, but never sent.
  return /[^0]/.test(hex) ? hex : randomHex(bytes);
}

class SpanTrace implements ExchangeTrace {
  readonly traceId: string;

  constructor(
    private readonly span: Span,
    private readonly context: Context,
    private readonly req: Request,
  ) {
    this.traceId = span.spanContext().traceId;
  }

  stage(name: string): void {
    this.span.addEvent(name);
  }

  inject(headers: OutgoingHeaders): void {
    dropClientContext(headers);
    propagator.inject(this.context, headers, defaultTextMapSetter);
  }

  end(ex: Exchange): void {
    const span = this.span;
    if (span.isRecording()) span.setAttributes(ingressAttributes(ex, this.req));
    // Server spans: a 4xx is the client's error, not the gateway's (OTel HTTP semantic conventions).
    if (ex.status === undefined || ex.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(ex.code ? { message: ex.code } : {}) });
    span.end();
  }
}

function ingressAttributes(ex: Exchange, req: Request): Attributes {
  const decision = ex.decision;
  return {
    [ATTR_HTTP_REQUEST_METHOD]: ex.method,
    [ATTR_URL_SCHEME]: 'https',
    [ATTR_URL_PATH]: ex.path,
    [ATTR_SERVER_ADDRESS]: ex.host,
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: ex.status,
    [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
    [ATTR_CLIENT_ADDRESS]: ex.connection?.remoteAddress,
    [ATTR_USER_AGENT_ORIGINAL]: req.headers['user-agent'],
    [ATTR_ERROR_TYPE]: ex.code,
    'portcullis.request_id': ex.id,
    'portcullis.route': ex.route,
    'portcullis.upstream': ex.upstream,
    'portcullis.upstream.address': ex.upstreamAddress,
    'portcullis.decision': decision ? (decision.allowed ? 'allow' : 'deny') : undefined,
    'portcullis.decision.reason': decision?.reason,
    'portcullis.policy': decision?.policy,
    'portcullis.rule': decision?.rule,
    'portcullis.principal': ex.principal,
    'portcullis.peer': ex.peer,
    'portcullis.error.reason': ex.reason,
  };
}

/** An egress attempt ends with its audit record: the span is written then, starting when the attempt did. */
function recordEgress(tracer: Tracer, ratio: number | undefined, req: IncomingMessage, record: EgressRecord): EgressRecord {
  const parent = parentOf(req);
  if (!sampledHere(ratio, parent)) return { ...record, traceId: randomHex(16) };
  const span = tracer.startSpan(req.method ?? 'HTTP', { kind: SpanKind.SERVER, startTime: Date.now() - record.durationMs }, parent);
  if (span.isRecording()) span.setAttributes(egressAttributes(record));
  if (record.allow && record.code) span.setStatus({ code: SpanStatusCode.ERROR, message: record.code });
  span.end();
  return { ...record, traceId: span.spanContext().traceId };
}

function egressAttributes(r: EgressRecord): Attributes {
  return {
    [ATTR_SERVER_ADDRESS]: r.host,
    [ATTR_SERVER_PORT]: r.port,
    [ATTR_CLIENT_ADDRESS]: r.remote,
    [ATTR_NETWORK_PEER_ADDRESS]: r.address,
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: r.status,
    [ATTR_ERROR_TYPE]: r.code,
    'portcullis.request_id': r.requestId,
    'portcullis.egress.proxy_type': r.proxyType,
    'portcullis.decision': r.allow ? 'allow' : 'deny',
    'portcullis.decision.reason': r.reason,
    'portcullis.rule': r.rule,
    'portcullis.principal': r.identity,
    'portcullis.egress.end': r.end,
    'portcullis.egress.bytes_up': r.bytesIn,
    'portcullis.egress.bytes_down': r.bytesOut,
  };
}
