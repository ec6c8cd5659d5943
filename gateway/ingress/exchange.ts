// The record of one ingress request: filled in by the stages as it goes down the pipeline, read by the
// access log and the metrics at the end.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AuthzDecision } from '../../policies/types.js';
import type { ErrorCode } from '../core/errors.js';
import type { RequestSeries } from '../core/request-metrics.js';
import type { ExchangeTrace } from '../core/tracing.js';
import type { ConnectionFields } from './access-fields.js';

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

export interface Exchange {
  id: string;
  started: number;
  method: string;
  host?: string;
  path?: string;
  route?: string;
  upstream?: string;
  /** The `host[:port]` the upstream pool connects to. */
  upstreamAddress?: string;
  /** Set when the request is sent to its upstream: that upstream's metrics, and when it was sent. */
  upstreamSeries?: RequestSeries;
  upstreamSent: number;
  peer?: string;
  principal?: string;
  decision?: AuthzDecision;
  code?: ErrorCode;
  reason?: string;
  status?: number;
  /** What fault injection did to the request, if anything (docs/traffic.md). */
  fault?: 'delay' | 'abort' | 'delay+abort';
  bytesIn: number;
  bytesOut: number;
  /** Its span (a shared no-op when tracing is off). */
  trace: ExchangeTrace;
  /** What the request's connection is (peer address, TLS session); undefined when it was gone before the request was read. */
  connection: ConnectionFields | undefined;
}
