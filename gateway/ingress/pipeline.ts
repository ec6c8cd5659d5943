// THE stage order of an ingress request; nothing else decides it. Request down:
//   host/SNI check → path normalization → route → authn (mTLS peer, JWT) → authz → limits → upstream
// Response up: upstream status/headers/body (hop-by-hop removed) → client; one access-log line at the end.
// Every stage before `upstream` can refuse; nothing is forwarded until all of them have passed.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Transform, type Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { AuthzDecision, RequestAttributes } from '../../policies/types.js';
import { GatewayError, toHttpResponse, type ErrorCode } from '../core/errors.js';
import { HOP_BY_HOP_HEADERS } from '../core/hop-by-hop.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ConnectionTracker } from './connections.js';
import type { IngressRuntime, VirtualHost } from './runtime.js';
import { peerSpiffeId } from './stages/authn-mtls.js';
import { describe as describeDecision } from './stages/authz.js';
import { normalizeRequestTarget } from './stages/normalize-path.js';
import type { OutgoingHeaders } from './stages/sanitize-headers.js';
import type { RequestHandler } from './tls/terminate.js';
import { canonicalHost } from './tls/host-index.js';
import { UPSTREAM_IDENTITY_ERROR } from './upstream/tls-identity.js';
import type { UpstreamResponse } from './upstream/clients.js';

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface PipelineDeps {
  logger: Logger;
  /** Told when each request starts and ends (slowloris deadline, graceful drain). */
  connections?: Pick<ConnectionTracker, 'requestStarted' | 'requestEnded'>;
  /** The runtime current when a request starts; it keeps that one to its end, whatever reloads happen. */
  runtime(): IngressRuntime;
  metrics?: Metrics;
}

/** What the access log records about one request. */
interface Exchange {
  id: string;
  started: number;
  method: string;
  host?: string;
  path?: string;
  route?: string;
  upstream?: string;
  peer?: string;
  principal?: string;
  decision?: AuthzDecision;
  code?: ErrorCode;
  reason?: string;
  status?: number;
  bytesIn: number;
  bytesOut: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const METHOD = /^[A-Z]{1,20}$/;

export function createPipeline(deps: PipelineDeps): (vhost: VirtualHost) => RequestHandler {
  return (vhost) => (req, res) => void handle(req, res, vhost, deps.runtime(), deps);
}

async function handle(req: Request, res: Response, vhost: VirtualHost, rt: IngressRuntime, deps: PipelineDeps): Promise<void> {
  const connection = 'stream' in req ? undefined : req.socket;
  deps.connections?.requestStarted(connection);
  const incomingId = req.headers['x-request-id'];
  const ex: Exchange = {
    id: typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
    started: performance.now(),
    method: req.method ?? '',
    bytesIn: 0,
    bytesOut: 0,
  };
  try {
    await proxy(req, res, vhost, rt, ex);
  } catch (err) {
    refuse(res, err, ex);
  } finally {
    const seconds = (performance.now() - ex.started) / 1000;
    deps.metrics?.requests(ex.route ?? 'none', ex.status ?? 0, ex.code ?? 'ok', seconds);
    if (ex.code === 'GW_AUTHN_INVALID_TOKEN') deps.metrics?.jwtFailure('any', ex.reason ?? 'unknown');
    logExchange(deps.logger, vhost, ex, req, seconds);
    deps.connections?.requestEnded(connection);
  }
}

async function proxy(req: Request, res: Response, vhost: VirtualHost, rt: IngressRuntime, ex: Exchange): Promise<void> {
  const socket = req.socket as TLSSocket;
  const listener = rt.listeners.get(vhost.listener);
  if (!listener) throw new GatewayError('GW_UNAVAILABLE', 'listener_removed');
  // Istio rejects methods that are not upper case; llhttp only parses known ones, HTTP/2 allows anything.
  if (!METHOD.test(ex.method)) throw new GatewayError('GW_REQUEST_MALFORMED', 'method');
  // llhttp silently drops header lines past its own cap instead of refusing; count them here.
  if (req.rawHeaders.length > 2 * listener.maxHeaders) throw new GatewayError('GW_HEADERS_TOO_LARGE', 'too_many_headers');

  // 1. Host must belong to the virtual host the TLS session was made for (Gateway API; envoy#6767).
  const host = requestHost(req);
  const owner = listener.hosts.lookup(host);
  // Compared by name: after a reload the connection's virtual host object is the previous runtime's.
  if (owner?.name !== vhost.name) {
    throw owner ? new GatewayError('GW_HOST_MISDIRECTED', 'host_sni_mismatch') : new GatewayError('GW_ROUTE_NOT_FOUND', 'unknown_host');
  }
  ex.host = host;

  // 2. One normalized path for routing, policy and the upstream.
  const target = normalizeRequestTarget(req.url ?? '');
  if ('error' in target) throw new GatewayError(target.error, target.reason);
  ex.path = target.path;

  // 3. Route.
  const route = rt.routes.select(vhost.name, ex.method, target.path);
  if (!route) throw new GatewayError('GW_ROUTE_NOT_FOUND');
  ex.route = route.name;

  // 4. Authentication: the mTLS peer, then the token (a missing token is anonymous; the policy decides).
  const peer = vhost.clientAuth === 'none' ? undefined : peerSpiffeId(socket);
  if (peer) ex.peer = peer;
  const authn = await rt.jwt.authenticate({
    headers: authnHeaders(req),
    query: target.query.length > 1 ? target.query.slice(1) : '',
    ...(route.jwtProviders ? { allowedProviders: route.jwtProviders } : {}),
  });
  if (authn.auth) ex.principal = authn.auth.principal;

  // 5. Authorization.
  const sourceIp = socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  const xffValue = Array.isArray(xff) ? xff.join(',') : xff;
  const attributes = requestAttributes(req, {
    host,
    method: ex.method,
    path: target.path,
    port: vhost.port,
    sni: socket.servername || '',
    sourceIp,
    remoteIp: rt.forwarded.clientAddress(sourceIp, xffValue),
    ...(peer ? { peerSpiffeId: peer } : {}),
    ...(authn.auth ? { auth: authn.auth } : {}),
  });
  ex.decision = rt.authz.authorize(route.name, attributes, ex.id);

  // 6. Rate limit, keyed by what authentication established.
  if (route.rateLimit) await rt.rateLimiter.enforce(route.rateLimit, attributes);

  // 7. Limits known before any body byte is read.
  const declaredLength = Number(req.headers['content-length'] ?? 0);
  if (declaredLength > route.maxBodyBytes) throw new GatewayError('GW_BODY_TOO_LARGE');

  // 8. Upstream: the request as the gateway vouches for it.
  const client = rt.upstreams.get(route.upstream);
  if (!client) throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'no_pool');
  ex.upstream = client.name;
  const headers = rt.sanitizer.sanitize(req.headers);
  for (const name of authn.removeHeaders) delete headers[name];
  if (authn.removeCookies.length > 0) removeCookies(headers, authn.removeCookies);
  Object.assign(headers, authn.setHeaders);
  rt.forwarded.apply(headers, { sourceIp, xff: xffValue, host, port: vhost.port });
  headers['x-request-id'] = ex.id;
  headers.host = requestAuthority(req);
  const query = authn.removeParams.length > 0 ? removeParams(target.query, authn.removeParams) : target.query;
  const body = hasBody(req) ? limitBody(req, route.maxBodyBytes, ex) : null;
  let upstream: UpstreamResponse;
  try {
    upstream = await client.request({ method: ex.method, path: target.path + query, headers, body, timeoutMs: route.timeoutMs });
  } catch (err) {
    throw body?.errored instanceof GatewayError ? body.errored : upstreamError(err);
  }
  await relay(upstream, res, ex);
}

function requestHost(req: Request): string {
  // RFC 9112 §3.2: more than one Host is a 400 (Node would silently keep the first).
  if (!('stream' in req) && countHeader(req.rawHeaders, 'host') > 1) throw new GatewayError('GW_REQUEST_MALFORMED', 'duplicate_host');
  const authority = req.headers[':authority'] ?? req.headers.host;
  if (typeof authority !== 'string' || authority === '') throw new GatewayError('GW_REQUEST_MALFORMED', 'missing_host');
  // RFC 9113 §8.3.1: when both are sent they must agree.
  if (req.headers[':authority'] && req.headers.host && req.headers.host !== authority) {
    throw new GatewayError('GW_REQUEST_MALFORMED', 'host_authority_mismatch');
  }
  return canonicalHost(authority);
}

/**
 * Node keeps only the first of repeated Authorization headers (other repeated headers are joined, which
 * the JWT stage sees); hand it every value so two tokens are refused rather than first-wins.
 */
function authnHeaders(req: Request): IncomingHttpHeaders {
  if ('stream' in req || countHeader(req.rawHeaders, 'authorization') < 2) return req.headers;
  const all: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'authorization') all.push(req.rawHeaders[i + 1]!);
  return { ...req.headers, authorization: all as unknown as string };
}

function countHeader(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

function requestAuthority(req: Request): string {
  return (req.headers[':authority'] ?? req.headers.host) as string;
}

function requestAttributes(req: Request, fields: Omit<RequestAttributes, 'header'>): RequestAttributes {
  let distinct: Map<string, string[]> | undefined;
  return {
    ...fields,
    // Built only when a policy asks for a header; each value of a repeated header stays separate.
    header(name) {
      if (!distinct) {
        distinct = new Map();
        const raw = req.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) {
          const key = raw[i]!.toLowerCase();
          const list = distinct.get(key);
          if (list) list.push(raw[i + 1]!);
          else distinct.set(key, [raw[i + 1]!]);
        }
      }
      return distinct.get(name);
    },
  };
}

function hasBody(req: Request): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/** Counts body bytes as they stream and cuts the request at the route's limit (413). */
function limitBody(req: Request, max: number, ex: Exchange): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      ex.bytesIn += chunk.length;
      if (ex.bytesIn > max) done(new GatewayError('GW_BODY_TOO_LARGE'));
      else done(null, chunk);
    },
  });
  req.on('error', (err) => counter.destroy(err));
  req.pipe(counter);
  return counter;
}

/**
 * Streams the upstream's answer to the client. Written with plain data/drain handling rather than
 * stream.pipeline, which allocates an AbortController per call and showed up in the S3 profile.
 */
function relay(upstream: UpstreamResponse, res: Response, ex: Exchange): Promise<void> {
  ex.status = upstream.statusCode;
  // Headers are set, not written: they leave with the first body byte or with the end, so an empty
  // body goes out as one HEADERS frame with END_STREAM, which gRPC trailers-only responses rely on.
  res.statusCode = upstream.statusCode;
  for (const name in upstream.headers) {
    const value = upstream.headers[name];
    if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name)) res.setHeader(name, value);
  }
  upstream.onTrailers?.((trailers) => res.addTrailers(trailers as Record<string, string>));
  const body = upstream.body;
  return new Promise<void>((resolve) => {
    // A body that arrives whole in one chunk (the common small answer) leaves with the headers and the
    // end in a single write; larger ones stream with backpressure.
    const declared = upstream.onTrailers ? -1 : Number(upstream.headers['content-length'] ?? -1);
    body.on('data', (chunk: Buffer) => {
      ex.bytesOut += chunk.length;
      if (ex.bytesOut === declared) res.end(chunk);
      else if (!(res as NodeJS.WritableStream).write(chunk)) body.pause();
    });
    res.on('drain', () => body.resume());
    body.once('end', () => {
      if (!res.writableEnded) res.end();
      resolve();
    });
    body.once('error', () => {
      res.destroy();
      resolve();
    });
    // The client went away: stop reading from the upstream.
    res.once('close', () => {
      if (!body.readableEnded) body.destroy();
      resolve();
    });
  });
}

function refuse(res: Response, err: unknown, ex: Exchange): void {
  const response = toHttpResponse(err, ex.id);
  ex.status = response.status;
  ex.code = err instanceof GatewayError ? err.code : 'GW_INTERNAL';
  if (err instanceof GatewayError && err.reason) ex.reason = err.reason;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(response.status, response.headers);
  res.end(response.body);
}

function upstreamError(err: unknown): GatewayError {
  const e = err as { code?: string; name?: string; reason?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === UPSTREAM_IDENTITY_ERROR) return new GatewayError('GW_UPSTREAM_IDENTITY', e.reason);
  if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY/.test(code)) return new GatewayError('GW_UPSTREAM_IDENTITY', code.toLowerCase());
  if (/TIMEOUT/i.test(code) || /Timeout/.test(e.name ?? '')) return new GatewayError('GW_UPSTREAM_TIMEOUT');
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

function logExchange(logger: Logger, vhost: VirtualHost, ex: Exchange, req: Request, seconds: number): void {
  logger.info({
    event: LOG_EVENTS.REQUEST,
    requestId: ex.id,
    listener: vhost.listener,
    vhost: vhost.name,
    proto: req.httpVersion,
    method: ex.method,
    host: ex.host,
    path: ex.path,
    route: ex.route,
    upstream: ex.upstream,
    status: ex.status,
    code: ex.code,
    reason: ex.reason,
    decision: ex.decision ? describeDecision(ex.decision) : undefined,
    peer: ex.peer,
    principal: ex.principal,
    remote: req.socket?.remoteAddress,
    bytesIn: ex.bytesIn,
    bytesOut: ex.bytesOut,
    latencyMs: Math.round(seconds * 100_000) / 100,
  });
}
