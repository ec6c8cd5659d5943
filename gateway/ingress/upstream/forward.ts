// The hop into the mesh: the request as the gateway vouches for it (client headers sanitized, token
// removed unless forwarded, claim and forwarded headers set, the normalized path), sent to the route's
// upstream pool, and the answer streamed back.
import { GatewayError } from '../../core/errors.js';
import { hopByHop } from '../../core/net/hop-by-hop.js';
import type { Exchange, Request, Response } from '../exchange.js';
import type { RequestLife } from '../request-life.js';
import type { IngressRuntime } from '../runtime.js';
import type { AuthnResult } from '../../jwt/verifier.js';
import type { ForwardedFor } from '../stages/forwarded.js';
import type { CompiledRoute } from '../stages/route.js';
import type { HeaderEdit } from '../stages/route-filters.js';
import type { Backend } from '../stages/route-traffic.js';
import type { OutgoingHeaders } from '../stages/sanitize-headers.js';
import { UPSTREAM_TIMEOUT, type FlowControl, type ResponseSink, type UpstreamClient, type UpstreamRequest } from './clients.js';
import { BodyCopy, hasBody, readRequestBody } from './request-body.js';
import { UPSTREAM_IDENTITY_ERROR } from '../../tls/server-identity.js';

export interface ForwardInput {
  route: CompiledRoute;
  /** The route's backend for this request (a split picks one); undefined for a redirect route. */
  backend: Backend | undefined;
  /** Normalized path and the raw query (with its `?`). */
  path: string;
  query: string;
  authn: AuthnResult;
  host: string;
  forwarded: ForwardedFor;
  port: number;
  timeouts: { requestMs: number; bodyIdleMs: number; writeIdleMs: number };
  /** The request's life: aborted when the client leaves or a deadline runs out, with the reason. */
  life: RequestLife;
}

export async function forward(req: Request, res: Response, rt: IngressRuntime, input: ForwardInput, ex: Exchange): Promise<void> {
  const { route, life } = input;
  const client = backendClient(rt, input, ex);
  // Set, since it has a client.
  const backend = input.backend!;
  const { headers, query } = upstreamRequest(req, rt, input, ex.id);
  ex.trace.inject(headers);
  // h2 (gRPC) bodies stream; on a retried route a copy is kept, so an answer can be retried once the body went up.
  const copy = client.trailers && route.retry ? new BodyCopy() : undefined;
  const limits = { maxBytes: route.maxBodyBytes, idleMs: input.timeouts.bodyIdleMs, requestMs: input.timeouts.requestMs, buffer: !client.trailers, copy };
  const body = hasBody(req) ? await readRequestBody(req, limits, ex, life) : null;
  // A request the client cancelled (or that timed out) while its body was read never reaches the upstream.
  life.throwIfAborted();
  const hashKey = client.hashKey?.(req.headers, input.forwarded.remoteIp);
  const upstreamReq: UpstreamRequest = { method: ex.method, path: input.path + query, headers, body, timeoutMs: backend.timeoutMs, signal: life, hashKey, retry: route.retry };
  if (copy && body) upstreamReq.replayBody = () => copy.whole();
  if (route.filters.mirror) rt.mirror(route.name, route.filters.mirror, upstreamReq);
  markSent(rt, client, ex);
  try {
    const sink = relayTo(res, ex, client.trailers, input.timeouts.writeIdleMs, life, route.filters.responseHeaders);
    await client.exchange(upstreamReq, sink);
    if (upstreamReq.endpoint) ex.upstreamAddress = upstreamReq.endpoint;
  } catch (err) {
    throw upstreamFailure(err, upstreamReq, ex);
  }
}

/** The request leaves for its upstream now: that upstream's series, and the start of the upstream's share of the time. */
export function markSent(rt: IngressRuntime, client: UpstreamClient, ex: Exchange): void {
  ex.upstreamSeries = rt.upstreamSeries.get(client.name);
  ex.upstreamSent = performance.now();
}

/** The client of the request's backend (its retries stay on it: docs/traffic.md, Splits), named in the access log. */
export function backendClient(rt: IngressRuntime, input: Pick<ForwardInput, 'backend'>, ex: Exchange): UpstreamClient {
  const client = input.backend && rt.upstreams.get(input.backend.name);
  if (!client) throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'no_pool');
  ex.upstream = client.name;
  ex.upstreamAddress = client.address;
  return client;
}

/** What the client is told of a failed upstream exchange: its own cancel, a refusal of ours, or the upstream's failure. */
export function upstreamFailure(err: unknown, upstreamReq: UpstreamRequest, ex: Exchange): unknown {
  if (upstreamReq.endpoint) ex.upstreamAddress = upstreamReq.endpoint;
  if (upstreamReq.signal.aborted) return upstreamReq.signal.reason;
  if (err instanceof GatewayError) return err;
  const failure = upstreamError(err);
  // Once the answer has started, the client must see a broken response, never a clean but short one.
  return ex.status === undefined ? failure : new GatewayError('GW_UPSTREAM_TRUNCATED', failure.reason ?? failure.code.toLowerCase());
}

/** The headers and query the upstream gets: what the gateway vouches for (also shown by `portcullis explain`). */
export function upstreamRequest(
  req: Pick<Request, 'headers'>,
  rt: Pick<IngressRuntime, 'sanitizer' | 'forwarded'>,
  input: Pick<ForwardInput, 'route' | 'authn' | 'forwarded' | 'host' | 'port' | 'query'>,
  requestId: string,
): { headers: OutgoingHeaders; query: string } {
  const { route, authn } = input;
  const headers = rt.sanitizer.sanitize(req.headers, route.overrideHeaders);
  for (const name of authn.removeHeaders) delete headers[name];
  if (authn.keepHeaders !== undefined) for (const name of authn.keepHeaders) headers[name] = req.headers[name] ?? '';
  if (authn.removeCookies.length > 0) removeCookies(headers, authn.removeCookies);
  Object.assign(headers, authn.setHeaders);
  rt.forwarded.apply(headers, input.forwarded, input.host, input.port);
  headers['x-request-id'] = requestId;
  headers.host = requestAuthority(req);
  // After authorization (policies judged what the client sent); the headers the gateway vouches for are refused here at validate.
  route.filters.requestHeaders?.(headers);
  const query = authn.removeParams.length > 0 ? removeParams(input.query, authn.removeParams) : input.query;
  return { headers, query };
}

function requestAuthority(req: Pick<Request, 'headers'>): string {
  return (req.headers[':authority'] ?? req.headers.host) as string;
}

/**
 * The client's response as the sink of the upstream's answer: headers, body with backpressure, trailers.
 * A client that stops reading pauses the upstream, and is cut (freeing the upstream) if it has not drained
 * within `writeIdleMs`.
 */
function relayTo(res: Response, ex: Exchange, trailers: boolean, writeIdleMs: number, life: RequestLife, edit: HeaderEdit | undefined): ResponseSink {
  let declared = -1;
  let control: FlowControl | undefined;
  let stalled: NodeJS.Timeout | undefined;
  const cut = () => life.abort(new GatewayError('GW_CLIENT_CANCELLED', 'write_timeout'));
  return {
    start(statusCode, headers, flow) {
      control = flow;
      ex.status = statusCode;
      ex.trace.stage('upstream_response');
      // Headers are set, not written: they leave with the first body byte or with the end, so an empty
      // body goes out as one HEADERS frame with END_STREAM, which gRPC trailers-only responses rely on.
      res.statusCode = statusCode;
      edit?.(headers);
      const isHopByHop = hopByHop(headers.connection);
      for (const name in headers) {
        const value = headers[name];
        if (value !== undefined && !isHopByHop(name)) res.setHeader(name, value);
      }
      // A body that arrives whole (the common small answer) leaves with the headers and the end in one
      // write; HTTP/2 answers may still have trailers to come, so they always end explicitly.
      if (!trailers) declared = Number(headers['content-length'] ?? -1);
      res.on('drain', () => {
        clearTimeout(stalled);
        flow.resume();
      });
    },
    data(chunk) {
      ex.bytesOut += chunk.length;
      if (ex.bytesOut === declared) res.end(chunk);
      else if (!(res as NodeJS.WritableStream).write(chunk)) {
        control?.pause();
        clearTimeout(stalled);
        stalled = setTimeout(cut, writeIdleMs);
      }
    },
    end(trailerHeaders) {
      clearTimeout(stalled);
      if (trailerHeaders) res.addTrailers(trailerHeaders as Record<string, string>);
      if (!res.writableEnded) res.end();
    },
  };
}

function upstreamError(err: unknown): GatewayError {
  const e = err as { code?: string; name?: string; reason?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === UPSTREAM_IDENTITY_ERROR) return new GatewayError('GW_UPSTREAM_IDENTITY', e.reason);
  if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY/.test(code)) return new GatewayError('GW_UPSTREAM_IDENTITY', code.toLowerCase());
  if (code === UPSTREAM_TIMEOUT || /TIMEOUT/i.test(code) || /Timeout/.test(e.name ?? '')) return new GatewayError('GW_UPSTREAM_TIMEOUT');
  return new GatewayError('GW_UPSTREAM_UNAVAILABLE', code ? code.toLowerCase() : undefined);
}

function removeCookies(headers: OutgoingHeaders, names: readonly string[]): void {
  const cookie = headers.cookie;
  if (typeof cookie !== 'string') return;
  const kept = cookie
    .split(';')
    .filter((pair) => !names.includes(pair.slice(0, pair.indexOf('=')).trim()))
    .join(';');
  if (kept.trim() === '') delete headers.cookie;
  else headers.cookie = kept.trim();
}

function removeParams(query: string, names: readonly string[]): string {
  const params = new URLSearchParams(query);
  for (const name of names) params.delete(name);
  const rest = params.toString();
  return rest ? `?${rest}` : '';
}
