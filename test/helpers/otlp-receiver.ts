// A real OTLP/HTTP traces receiver (no collector runs here): a node:http server on 127.0.0.1:0 that decodes the
// JSON export requests of @opentelemetry/exporter-trace-otlp-http (OTLP's JSON encoding: hex ids, typed values).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 2 = SERVER. */
  kind: number;
  serviceName: string | undefined;
  attributes: Record<string, string | number | boolean>;
  events: string[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  startNanos: bigint;
  endNanos: bigint;
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT/v1/traces` */
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received (decoded or not). */
  requests: number;
  /** Resolves once `count` spans have arrived; rejects after `timeoutMs`. */
  waitForSpans(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string;
        endTimeUnixNano: string;
        attributes?: KeyValue[];
        events?: { name: string }[];
        status?: { code?: number };
      }[];
    }[];
  }[];
}

function value(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? '';
}

function attributes(list: KeyValue[] = []): Record<string, string | number | boolean> {
  return Object.fromEntries(list.map((kv) => [kv.key, value(kv.value)]));
}

export function decodeExport(body: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const serviceName = attributes(rs.resource?.attributes)['service.name'] as string | undefined;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          kind: s.kind,
          serviceName,
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => e.name),
          statusCode: s.status?.code ?? 0,
          startNanos: BigInt(s.startTimeUnixNano),
          endNanos: BigInt(s.endTimeUnixNano),
        });
      }
    }
  }
  return out;
}

/** `respond: false` makes a black hole: it reads the export request and never answers. */
export async function startOtlpReceiver(options: { respond?: boolean } = {}): Promise<OtlpReceiver> {
  const respond = options.respond ?? true;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests++;
      if (!respond) return;
      receiver.spans.push(...decodeExport(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans: [],
    requests: 0,
    async waitForSpans(count, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (receiver.spans.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} spans, got ${receiver.spans.length}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return receiver.spans;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
