// THE stage order of an ingress request; nothing else decides it. Request down:
//   HTTP/1 framing → host/SNI check → path normalization → route → authn (mTLS peer, JWT) → authz → limits → fault
//   injection → upstream (a redirect route answers after limits, without any upstream)
// Response up: upstream status/headers/body (hop-by-hop removed) → client; one access-log line at the end.
// Every stage before `upstream` can refuse; nothing is forwarded until all of them have passed.
// An HTTP/1.1 upgrade request (WebSocket; every other protocol is refused) takes the same stages, then a tunnel.
import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { RequestAttributes } from '../../policies/types.js';
import { GatewayError, isGrpcContentType, toGrpcResponse, toHttpResponse } from '../core/errors.js';
import { LOG_EVENTS, recordLine, type Logger, type RecordLine } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { AuditTrail } from '../audit/trail.js';
import { connectionOf, userAgentOf } from './access-fields.js';
import type { ConnectionTracker } from './connections.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Http2ServerRequest } from 'node:http2';
import type { Exchange, Request, Response } from './exchange.js';
import type { IngressRuntime, VirtualHost } from './runtime.js';
import { peerSpiffeId } from './stages/authn-mtls.js';
import { describe as describeDecision } from './stages/authz.js';
import { checkHost } from './stages/host-sni.js';
import { injectFault } from './stages/fault.js';
import { checkHttp1Framing } from './stages/http1-framing.js';
import { RequestLife } from './request-life.js';
import { answerRedirect } from './stages/redirect.js';
import { answerAndClose, type RequestHandler } from './tls/terminate.js';
import { forward, type ForwardInput } from './upstream/forward.js';
import { proxyWebSocket } from './upstream/websocket.js';
import { checkWebSocketHandshake, refuseStrayUpgrade } from './stages/upgrade.js';

export interface PipelineDeps {
  logger: Logger;
  /** Told when each request starts and ends (slowloris deadline, graceful drain, HTTP/2 stream limits). */
  connections?: Pick<ConnectionTracker, 'requestStarted' | 'requestEnded' | 'streamReset'>;
  /** The runtime current when a request starts; it keeps that one to its end, whatever reloads happen. */
  runtime(): IngressRuntime;
  metrics?: Metrics;
  /** Receives every refusal (and, with `ingressAllows`, every proxied request) as a chained audit record. */
  audit?: AuditTrail;
}


const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const METHOD = /^[A-Z]{1,20}$/;

export function createPipeline(deps: PipelineDeps): (vhost: VirtualHost) => RequestHandler {
  return (vhost) => {
    // The virtual host's fields are serialized once, into the child's bindings, not on every request line.
    const accessLog = recordLine(deps.logger.child({ listener: vhost.listener, vhost: vhost.name }));
    const handler: RequestHandler = (req, res) => {
      // HTTP/2 streams start once the frames read with their HEADERS have been processed: a stream its client
      // reset in the same read (the Rapid Reset attack, CVE-2023-44487) is then already closed, and costs a
      // check instead of a pass through the pipeline.
      if ('stream' in req) setImmediate(startStream, req, res, req.stream.session, vhost, deps, accessLog);
      else void handle(req, res, req.socket, vhost, deps.runtime(), deps, accessLog);
    };
    handler.upgrade = (req, socket, head) => void handleUpgrade(req, socket as Socket, head, vhost, deps.runtime(), deps, accessLog);
    return handler;
  };
}

function startStream(req: Http2ServerRequest, res: Response, session: unknown, vhost: VirtualHost, deps: PipelineDeps, accessLog: RecordLine): void {
  if (req.stream.closed) return deps.connections?.streamReset(session);
  void handle(req, res, session, vhost, deps.runtime(), deps, accessLog);
}

async function handle(req: Request, res: Response, connection: unknown, vhost: VirtualHost, rt: IngressRuntime, deps: PipelineDeps, accessLog: RecordLine): Promise<void> {
  if (deps.connections?.requestStarted(connection) === false) {
    // More streams still in the pipeline than the connection may open at once: reset ones included, so
    // opening and resetting streams cannot run unbounded work (CVE-2023-44487; Go's fix).
    const { stream } = req as Http2ServerRequest;
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    return;
  }
  const ex = openExchange(req, rt);
  // The request's life: aborted when its client leaves (HTTP/1 close, RST_STREAM) or a deadline runs out,
  // which stops its upstream request at once and frees its place in the upstream's queue.
  const life = new RequestLife();
  res.once('close', () => {
    // writableEnded, not writableFinished: HTTP/2's compatibility response reports "finished" on a reset.
    if (res.writableEnded) return;
    life.abort(new GatewayError('GW_CLIENT_CANCELLED', 'stream' in req ? 'stream_reset' : 'connection_closed'));
    if ('stream' in req && ex.code === undefined) deps.connections?.streamReset(connection);
  });
  try {
    if (deps.audit?.refusing()) throw new GatewayError('GW_UNAVAILABLE', 'audit_unavailable');
    await proxy(req, res, vhost, rt, ex, life);
  } catch (err) {
    refuse(req, res, err, ex);
  } finally {
    closeExchange(ex, req, vhost, deps, accessLog, connection);
  }
}

/**
 * A WebSocket opening handshake (HTTP/1.1 with `Connection: upgrade`; see stages/upgrade.ts): the same stages as
 * any request, then the tunnel (upstream/websocket.ts), counted as a request in flight until it closes, so a drain
 * waits for it or cuts it at its end. One access line, written when it closes.
 */
async function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, vhost: VirtualHost, rt: IngressRuntime, deps: PipelineDeps, accessLog: RecordLine): Promise<void> {
  // Node stops watching the socket once it hands it over: an error nobody listens to would end the process.
  socket.on('error', () => socket.destroy());
  deps.connections?.requestStarted(socket);
  const ex = openExchange(req, rt);
  const life = new RequestLife();
  socket.once('close', () => life.abort(new GatewayError('GW_CLIENT_CANCELLED', 'connection_closed')));
  try {
    if (deps.audit?.refusing()) throw new GatewayError('GW_UNAVAILABLE', 'audit_unavailable');
    checkHttp1Framing(req);
    checkWebSocketHandshake(req);
    const input = await admit(req, vhost, rt, ex, life);
    const { route, backend } = input;
    // Checked once the request passed every check: a client the policies refuse learns nothing of the route.
    if (!route.websocket || !backend) throw new GatewayError('GW_REQUEST_MALFORMED', 'websocket_not_allowed');
    await readyToForward(input, ex);
    await proxyWebSocket(req, socket, head, rt, input, route.websocket, ex);
  } catch (err) {
    refuseOnSocket(socket, err, ex);
  } finally {
    closeExchange(ex, req, vhost, deps, accessLog, socket);
  }
}

function openExchange(req: Request, rt: IngressRuntime): Exchange {
  const incomingId = req.headers['x-request-id'];
  return {
    id: typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
    started: performance.now(),
    method: req.method ?? '',
    // Every field from the start, so each request's record has one shape (no hidden-class transitions).
    host: undefined,
    path: undefined,
    route: undefined,
    upstream: undefined,
    upstreamAddress: undefined,
    upstreamSeries: undefined,
    upstreamSent: 0,
    peer: undefined,
    principal: undefined,
    decision: undefined,
    code: undefined,
    reason: undefined,
    status: undefined,
    fault: undefined,
    bytesIn: 0,
    bytesOut: 0,
    trace: rt.tracing.start(req),
    connection: connectionOf(req),
  };
}

/** The request's metrics, access line, audit record and span, and its end for the connection tracker. */
function closeExchange(ex: Exchange, req: Request, vhost: VirtualHost, deps: PipelineDeps, accessLog: RecordLine, connection: unknown): void {
  const now = performance.now();
  const seconds = (now - ex.started) / 1000;
  deps.metrics?.requests(ex.route ?? 'none', ex.status ?? 0, ex.code ?? 'ok', seconds, ex.bytesIn, ex.bytesOut);
  // The same status and code as the route's series, so the two add up; the time is the upstream's share.
  ex.upstreamSeries?.record(ex.status ?? 0, ex.code ?? 'ok', (now - ex.upstreamSent) / 1000, ex.bytesIn, ex.bytesOut);
  const line = accessLine(ex, req, seconds);
  accessLog(line);
  if (deps.audit && (ex.code !== undefined || deps.audit.ingressAllows)) deps.audit.append('ingress', { listener: vhost.listener, vhost: vhost.name, ...line });
  ex.trace.end(ex);
  deps.connections?.requestEnded(connection);
}

async function proxy(req: Request, res: Response, vhost: VirtualHost, rt: IngressRuntime, ex: Exchange, life: RequestLife): Promise<void> {
  // 0. Framing first and synchronously: a refusal must land before llhttp emits the connection's next request.
  checkHttp1Framing(req);
  refuseStrayUpgrade(req);
  const input = await admit(req, vhost, rt, ex, life);
  const { route } = input;
  // 6b. A redirect route answers here, having passed every check, without any upstream.
  if (route.filters.redirect) return answerRedirect(req, res, route.filters.redirect, { forwardPath: input.path, query: input.query }, ex);

  // 7. Limits known before any body byte is read.
  const declaredLength = Number(req.headers['content-length'] ?? 0);
  if (declaredLength > route.maxBodyBytes) throw new GatewayError('GW_BODY_TOO_LARGE');

  await readyToForward(input, ex);
  await forward(req, res, rt, input, ex);
}

/** Stages 8–9, the last before any upstream (requests and WebSocket handshakes alike). */
async function readyToForward({ route, backend, life }: ForwardInput, ex: Exchange): Promise<void> {
  // 8. Fault injection, when the route asks for it: only requests that passed every check are delayed or aborted.
  if (route.fault && backend) await injectFault(route.fault, backend.timeoutMs, life, ex);
  // 9. Upstream, unless the client has already gone (a stream reset while the stages ran is never sent).
  life.throwIfAborted();
  ex.trace.stage('forwarding');
}

/** Stages 1–6: what the request is, where it goes, who sends it, and whether it may. Throws the refusal. */
async function admit(
  req: Request,
  vhost: VirtualHost,
  rt: IngressRuntime,
  ex: Exchange,
  life: RequestLife,
): Promise<ForwardInput> {
  const listener = rt.listeners.get(vhost.listener);
  if (!listener) throw new GatewayError('GW_UNAVAILABLE', 'listener_removed');
  // Istio rejects methods that are not upper case; llhttp only parses known ones, HTTP/2 allows anything.
  if (!METHOD.test(ex.method)) throw new GatewayError('GW_REQUEST_MALFORMED', 'method');
  // llhttp silently drops header lines past its own cap instead of refusing; count them here.
  if (req.rawHeaders.length > 2 * listener.maxHeaders) throw new GatewayError('GW_HEADERS_TOO_LARGE', 'too_many_headers');
  // Node advertises maxHeaderBytes to HTTP/2 clients (SETTINGS_MAX_HEADER_LIST_SIZE) but does not hold them to it, and
  // HPACK lets a 4 KB header block decode to 200 KB by repeating one dynamic-table entry (Envoy's cookie
  // amplification, CVE-2026-47774): measured here, after decoding, before anything is forwarded.
  if ('stream' in req && headerListSize(req.rawHeaders) > listener.maxHeaderBytes) throw new GatewayError('GW_HEADERS_TOO_LARGE', 'header_list_too_large');

  // 1. Host must belong to the virtual host the TLS session was made for.
  const host = checkHost(req, listener.hosts, vhost);
  ex.host = host;

  // 2. One normalized path for routing, policy and the upstream.
  const target = rt.paths.normalize(req.url ?? '');
  ex.path = target.path;

  // 3. Route (which also refuses a path its case or normalization options do not accept).
  const route = rt.routes.select(vhost.name, ex.method, target, req.rawHeaders);
  if (!route) throw new GatewayError('GW_ROUTE_NOT_FOUND');
  ex.route = route.name;

  // 4. Authentication: the mTLS peer, then the token (a missing token is anonymous and the policy decides, unless
  //    the route requires authentication: then it is a 401 here, before authorization).
  const peer = vhost.clientAuth === 'none' ? undefined : peerSpiffeId(req.socket as TLSSocket);
  if (peer) ex.peer = peer;
  const authn = await rt.jwt.authenticate({
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    query: target.query.length > 1 ? target.query.slice(1) : '',
    ...(route.jwtProviders ? { allowedProviders: route.jwtProviders } : {}),
    required: route.authenticationRequired,
  });
  if (authn.auth) ex.principal = authn.auth.principal;
  if (authn.wouldDeny) rt.wouldDeny({ kind: 'jwt', policy: authn.wouldDeny.provider, reason: authn.wouldDeny.reason, requestId: ex.id, route: route.name });
  if (route.authenticationDryRun && !authn.auth) rt.wouldDeny({ kind: 'jwt', policy: route.name, reason: 'token_missing', requestId: ex.id, route: route.name });
  ex.trace.stage('authenticated');

  // 5. Authorization.
  const sourceIp = ex.connection?.remoteAddress ?? '';
  const forwarded = rt.forwarded.resolve(sourceIp, req.headers['x-forwarded-for']);
  // A listener configured on port 0 has its real port only on the socket; policies and X-Forwarded-Port see that one.
  const port = vhost.port || (req.socket.localPort ?? 0);
  const attributes = requestAttributes(req, {
    host,
    method: route.effectiveMethod(ex.method, req.headers),
    path: target.path,
    port,
    sni: ex.connection?.tls.sni ?? '',
    sourceIp,
    remoteIp: forwarded.remoteIp,
    ...(peer ? { peerSpiffeId: peer } : {}),
    ...(authn.auth ? { auth: authn.auth } : {}),
    ...(route.pathCase ? { pathCase: route.pathCase } : {}),
  });
  rt.authz.authorize(route.name, attributes, ex);
  ex.trace.stage('authorized');

  // 6. Rate limit, keyed by what authentication established.
  if (route.rateLimit) await rt.rateLimiter.enforce(route.rateLimit, attributes, { requestId: ex.id, route: route.name });
  // One backend per request, picked once: its timeout bounds a fault's delay, and its retries stay on it.
  const backend = route.backend ?? route.split?.pick();
  return { route, backend, path: target.forwardPath, query: target.query, authn, host, forwarded, port, timeouts: listener.timeouts, life };
}

/** RFC 9113 §6.5.2: each field's name and value octets plus 32. Node makes HTTP/2 fields one-byte strings, one octet a character. */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) size += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + 32;
  return size;
}

export function requestAttributes(req: Pick<Request, 'rawHeaders'>, fields: Omit<RequestAttributes, 'header'>): RequestAttributes {
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
      // An HTTP/2 request names its host in `:authority` and usually sends no Host (RFC 9113 §8.3.1): as in Envoy,
      // `host` reads the authority, so a `request.headers[host]` condition cannot be sidestepped by switching to h2.
      // One rule with checkHost and the upstream's Host: `:authority` when sent, else Host (both sent must agree).
      return name === 'host' ? (distinct.get(':authority') ?? distinct.get('host')) : distinct.get(name);
    },
  };
}

function refuse(req: Request, res: Response, err: unknown, ex: Exchange): void {
  const response = isGrpcContentType(req.headers['content-type']) ? toGrpcResponse(err, ex.id) : toHttpResponse(err, ex.id);
  ex.status = response.status;
  ex.code = err instanceof GatewayError ? err.code : 'GW_INTERNAL';
  if (err instanceof GatewayError && err.reason) ex.reason = err.reason;
  if (ex.code === 'GW_CLIENT_CANCELLED' || res.headersSent) return breakResponse(req, res);
  // Headers an upstream answer had set before it failed are not part of the gateway's error.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  // A request whose body was not read to its end leaves the connection unusable for the next one.
  if (!('stream' in req) && !req.complete) (res as ServerResponse).shouldKeepAlive = false;
  // Set, not written, and no body at all: a gRPC refusal then leaves as one HEADERS frame with END_STREAM.
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  if (response.body === '') res.end();
  else res.end(response.body);
}

/** A refused upgrade: the error answer on the raw socket, or, once it switched protocols, a cut. */
function refuseOnSocket(socket: Socket, err: unknown, ex: Exchange): void {
  const error = err instanceof GatewayError ? err : new GatewayError('GW_INTERNAL');
  ex.code = error.code;
  if (error.reason) ex.reason = error.reason;
  if (error.code === 'GW_CLIENT_CANCELLED' || ex.status !== undefined) return void socket.destroy();
  ex.status = error.status;
  answerAndClose(socket, error, ex.id);
}

/**
 * Ends a response that cannot be completed so that the client sees an error, not a short success:
 * HTTP/2 resets the stream with INTERNAL_ERROR, HTTP/1.1 closes the connection before the last chunk.
 */
function breakResponse(req: Request, res: Response): void {
  if (!('stream' in req)) res.destroy();
  else if (!req.stream.destroyed) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
}

/** The access line's fields; the ingress audit record is the same fields, so the two can be joined by requestId. */
function accessLine(ex: Exchange, req: Request, seconds: number) {
  return {
    event: LOG_EVENTS.REQUEST,
    requestId: ex.id,
    traceId: ex.trace.traceId,
    proto: req.httpVersion,
    method: ex.method,
    host: ex.host,
    path: ex.path,
    route: ex.route,
    upstream: ex.upstream,
    upstreamAddress: ex.upstreamAddress,
    status: ex.status,
    code: ex.code,
    reason: ex.reason,
    fault: ex.fault,
    decision: ex.decision ? describeDecision(ex.decision) : undefined,
    peer: ex.peer,
    principal: ex.principal,
    remote: ex.connection?.remoteAddress,
    userAgent: userAgentOf(req),
    tls: ex.connection?.tls,
    bytesIn: ex.bytesIn,
    bytesOut: ex.bytesOut,
    latencyMs: Math.round(seconds * 100_000) / 100,
  };
}
