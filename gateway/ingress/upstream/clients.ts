// Connection pools to upstreams, built once per config: undici's Pool for HTTP/1.1 (keep-alive, bounded
// connections) and one multiplexed node:http2 session for h2 upstreams (gRPC needs trailers end to end,
// which undici's experimental h2 does not expose). Over TLS the gateway presents its SVID and verifies
// the upstream against the mesh bundle and, when configured, its SPIFFE ID. The SNI and the name checked are the
// upstream's configured ones, never the request's Host (see fixedNameConnector).
import http2 from 'node:http2';
import net from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { pipeline, type Duplex, type Readable } from 'node:stream';
import { Pool, buildConnector } from 'undici';
import { GatewayError } from '../../core/errors.js';
import { createAdmission, type Admission } from './admission.js';
import { retriable, withRetries, type RetryPolicy, type RetryState } from './retry.js';
import { createEndpointSet, type Endpoint, type EndpointSet, type EndpointSetOptions, type Transport } from './endpoints.js';
import type { OutgoingHeaders } from '../stages/sanitize-headers.js';
import type { Cancellation } from '../request-life.js';
import type { RevocationList, SpiffePeerVerifier } from '../../../certs/verify.js';
import { upstreamIdentityCheck } from './tls-identity.js';

export interface UpstreamTls {
  caPem: string;
  /** The gateway's client certificate (mutual TLS); absent for one-way TLS. */
  certPem?: string;
  keyPem?: string;
  /**
   * The SNI of every connection: `tls.serverName`, else the URL's host when it is a DNS name; absent for an IP
   * literal (RFC 6066 §3). Fixed by config, never the request's Host (Envoy's `sni`, without `auto_sni`).
   */
  serverName?: string;
  /** The name the certificate must carry when there is no `verify`: `serverName`, else the URL's IP literal. */
  verifyName: string;
  /** Checks the upstream's SPIFFE ID (and revocation); without it the DNS name is checked. */
  verify?: SpiffePeerVerifier;
  /** `mesh.revoked`, checked after the name when there is no `verify`. */
  revoked?: RevocationList;
}

export interface UpstreamClientOptions {
  name: string;
  /** The scheme, and the host:port dialled when there are no `endpoints` or `dns`. */
  origin: URL;
  protocol: 'http1' | 'h2';
  tls?: UpstreamTls;
  /**
   * HTTP/1.1: pool connections; h2: concurrent streams on the session; per endpoint. Times the endpoints, the
   * admission's concurrency.
   */
  connections: number;
  /** Requests that may wait for a free connection or stream; beyond it, 503 at once. */
  maxPendingRequests: number;
  connectTimeoutMs: number;
  /** Requests running or waiting at once (across the endpoints); beyond it, 503 at once. */
  maxRequests?: number;
  /** Set when the upstream has several endpoints, a DNS name or health checks (see endpoints.ts); unset: the origin alone. */
  balanced?: BalancedOptions;
  /** Called with the threshold's name each time a request is refused 503 for it. */
  onOverloaded?(reason: string): void;
  /** Retries in flight at once on this upstream, whatever the routes' budgets allow (Envoy's max_retries). */
  maxRetries?: number;
  /** Called for each retry made (`retried`) or refused (`budget_exhausted`, `max_retries`). */
  onRetry?(outcome: string): void;
}

/** The endpoint set's options (see endpoints.ts), and how a `consistentHash` key is read from a request. */
export type BalancedOptions = Omit<EndpointSetOptions, 'transport'> & {
  hashOn?: { header: string } | { cookie: string } | { sourceIp: true };
};

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: OutgoingHeaders;
  body: Readable | Buffer | null;
  /** For the response headers, and then between body chunks (504 when it runs out). */
  timeoutMs: number;
  /** Aborted when the client leaves or a request deadline runs out: the upstream request stops at once. */
  signal: Cancellation;
  /** The `consistentHash` key (see `UpstreamClient.hashKey`). */
  hashKey?: string | undefined;
  /** Set by an upstream with several endpoints to the one it picked, for the access log. */
  endpoint?: string;
  /** The route's retry policy (see retry.ts). */
  retry?: RetryPolicy | undefined;
  /** A WebSocket opening handshake (HTTP/1.1 upstreams only): a 101 answer goes to the sink's `upgraded`. */
  upgrade?: 'websocket';
  /** A streamed body's copy, whole once the client's side ended within its cap, else undefined (see request-body.ts). */
  replayBody?: (() => Buffer | undefined) | undefined;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Pauses and resumes the upstream body (backpressure); giving up on it goes through the request's signal. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

/**
 * Where an upstream answer goes, pushed as it arrives: no intermediate body stream between the upstream's
 * parser and the client's response (undici's `dispatch` handler API; the Readable of `pool.request` cost
 * several process.nextTick hops per response in the S1 profile).
 */
export interface ResponseSink {
  start(statusCode: number, headers: ResponseHeaders, flow: FlowControl): void;
  data(chunk: Buffer): void;
  end(trailers?: ResponseHeaders): void;
  /** The upstream switched protocols (101): the connection is the sink's from now on (set for upgrades only). */
  upgraded?: ((statusCode: number, headers: ResponseHeaders, socket: Duplex) => void) | undefined;
}

export interface UpstreamClient {
  readonly name: string;
  /** True when answers may end with trailers (HTTP/2, gRPC): the body must not be closed before them. */
  readonly trailers: boolean;
  /**
   * The origin's `host[:port]` as its URL gives it (no port when it is the scheme's default), for the access log;
   * with several endpoints the request's `endpoint` says which one answered.
   */
  readonly address: string;
  /**
   * Resolves when the answer has ended; rejects on any failure, before or during it, with the signal's
   * reason once it is aborted. Waits for a free slot first (see admission.ts).
   */
  exchange(req: UpstreamRequest, sink: ResponseSink): Promise<void>;
  readonly admission: Pick<Admission, 'active' | 'pending'>;
  /** Reads a `consistentHash` upstream's key from a request; unset for every other upstream. */
  readonly hashKey?: (headers: Readonly<Record<string, string | string[] | undefined>>, remoteIp: string) => string | undefined;
  /** Each endpoint and its health, for the admin plane and metrics (one entry, the origin, when unbalanced). */
  endpoints(): EndpointStatus[];
  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void>;
  /** Cuts every connection and whatever is still running on it (end of a shutdown drain). */
  destroy(): Promise<void>;
}

/** The error a request's upstream wait ends with when the upstream is slower than its timeout. */
export const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';

export interface EndpointStatus {
  address: string;
  weight: number;
  /** Passes its active checks (always true without them). */
  healthy: boolean;
  /** Ejected by outlier detection until this time (ISO), else absent. */
  ejectedUntil?: string;
  active: number;
}

type Dispatch = (req: UpstreamRequest, sink: ResponseSink) => Promise<void>;

export function createUpstreamClient(options: UpstreamClientOptions): UpstreamClient {
  if (options.balanced) return createBalancedClient(options, options.balanced);
  // One endpoint: the request goes straight to its pool, with nothing picked, wrapped or counted per request.
  const transport = createTransport(options, options.origin);
  const admission = createAdmission({ concurrency: options.connections, maxPending: options.maxPendingRequests });
  const retries = retryState(options);
  return {
    ...describedBy(options, admission),
    endpoints: () => [{ address: options.origin.host, weight: 1, healthy: true, active: admission.active }],
    exchange: (req, sink) => admitted(admission, retries, options, req, sink, transport.dispatch),
    close: transport.close,
    destroy: transport.destroy,
  };
}

/** What every client says of itself, one endpoint or several. */
function describedBy(options: UpstreamClientOptions, admission: Admission): Pick<UpstreamClient, 'name' | 'address' | 'trailers' | 'admission'> {
  return { name: options.name, address: options.origin.host, trailers: options.protocol === 'h2', admission };
}

function retryState(options: UpstreamClientOptions): RetryState {
  return { active: 0, max: options.maxRetries, ...(options.onRetry ? { onRetry: options.onRetry } : {}) };
}

/** Runs the request's tries (one, or more on a retried route) once it has a slot. The one promise per request. */
async function admitted(
  admission: Admission,
  retries: RetryState,
  options: UpstreamClientOptions,
  req: UpstreamRequest,
  sink: ResponseSink,
  tryOnce: (req: UpstreamRequest, sink: ResponseSink) => Promise<void>,
): Promise<void> {
  req.signal.throwIfAborted();
  const waiting = acquire(admission, req, options);
  if (waiting) await waiting;
  try {
    if (retriable(req)) await withRetries(req, sink, retries, () => admission.active, tryOnce);
    else await tryOnce(req, sink);
  } finally {
    admission.release();
  }
}

/** Takes an admission slot, or refuses at once (counted) over `maxRequests` or a full queue. */
function acquire(admission: Admission, req: UpstreamRequest, options: UpstreamClientOptions): Promise<void> | undefined {
  if (options.maxRequests !== undefined && admission.active + admission.pending >= options.maxRequests) {
    options.onOverloaded?.('max_requests');
    throw new GatewayError('GW_UPSTREAM_OVERLOADED', 'max_requests');
  }
  try {
    return admission.acquire(req.signal, req.timeoutMs);
  } catch (err) {
    if (err instanceof GatewayError && err.reason) options.onOverloaded?.(err.reason);
    throw err;
  }
}

/**
 * Several endpoints: one admission for the upstream (its concurrency grows with the endpoints), then a pick, then
 * that endpoint's pool; each answer feeds the endpoint's passive health.
 */
function createBalancedClient(options: UpstreamClientOptions, balanced: BalancedOptions): UpstreamClient {
  const set = createEndpointSet({
    ...balanced,
    transport: (host, port) => createTransport(options, endpointOrigin(options.origin, host, port)),
  });
  const admission = createAdmission({
    get concurrency() {
      return options.connections * Math.max(1, set.endpoints.length);
    },
    maxPending: options.maxPendingRequests,
  });
  const retries = retryState(options);
  return {
    ...describedBy(options, admission),
    ...(balanced.hashOn ? { hashKey: hashKeyReader(balanced.hashOn) } : {}),
    endpoints: () =>
      set.endpoints.map((e) => ({
        address: e.address,
        weight: e.weight,
        healthy: e.healthy,
        ...(e.ejectedUntil > Date.now() ? { ejectedUntil: new Date(e.ejectedUntil).toISOString() } : {}),
        active: e.active,
      })),
    async exchange(req, sink) {
      if (set.endpoints.length === 0) await set.ready;
      // Each try picks an endpoint, a retry one its request has not tried while there is one (kept only for a
      // request that may be retried).
      const tried: Endpoint[] | undefined = req.retry ? [] : undefined;
      const tryOnce = (attempt: UpstreamRequest, trySink: ResponseSink) => {
        const endpoint = set.pick(req.hashKey, tried);
        if (!endpoint) throw new GatewayError('GW_UPSTREAM_NO_HEALTHY', set.endpoints.length === 0 ? 'no_endpoints' : 'all_unavailable');
        tried?.push(endpoint);
        req.endpoint = endpoint.address;
        return exchangeWith(endpoint, set, attempt, trySink, req.signal);
      };
      return admitted(admission, retries, options, req, sink, tryOnce);
    },
    close: () => set.close(),
    destroy: () => set.destroy(),
  };
}

/** One request on one endpoint: a 5xx answer or a failure (other than the client's own cancel) counts against it. */
async function exchangeWith(endpoint: Endpoint, set: EndpointSet, req: UpstreamRequest, sink: ResponseSink, client: Cancellation): Promise<void> {
  let status = 0;
  const observed: ResponseSink = {
    start(statusCode, headers, flow) {
      status = statusCode;
      sink.start(statusCode, headers, flow);
    },
    data: (chunk) => sink.data(chunk),
    end: (trailers) => sink.end(trailers),
    upgraded: sink.upgraded,
  };
  endpoint.active++;
  try {
    await endpoint.transport.dispatch(req, observed);
    if (status >= 500) set.failed(endpoint);
    else set.succeeded(endpoint);
  } catch (err) {
    if (!client.aborted) set.failed(endpoint);
    throw err;
  } finally {
    endpoint.active--;
  }
}

function endpointOrigin(origin: URL, host: string, port: number): URL {
  return new URL(`${origin.protocol}//${net.isIPv6(host) ? `[${host}]` : host}:${port}`);
}

/** The `consistentHash` key: a header's value, a cookie's, or the client address. */
function hashKeyReader(hashOn: NonNullable<BalancedOptions['hashOn']>): NonNullable<UpstreamClient['hashKey']> {
  if ('sourceIp' in hashOn && hashOn.sourceIp) return (_headers, remoteIp) => remoteIp;
  if ('header' in hashOn) {
    const name = hashOn.header;
    return (headers) => {
      const value = headers[name];
      return Array.isArray(value) ? value.join(',') : value;
    };
  }
  const prefix = `${(hashOn as { cookie: string }).cookie}=`;
  return (headers) => {
    const cookie = headers.cookie;
    for (const pair of (Array.isArray(cookie) ? cookie.join(';') : (cookie ?? '')).split(';')) {
      const trimmed = pair.trim();
      if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length);
    }
    return undefined;
  };
}

function createTransport(options: UpstreamClientOptions, origin: URL): Transport {
  return options.protocol === 'h2' ? createH2Transport(options, origin) : createHttp1Transport(options, origin);
}

function tlsConnectOptions(tls: UpstreamTls) {
  return {
    ca: tls.caPem,
    ...(tls.certPem && tls.keyPem ? { cert: tls.certPem, key: tls.keyPem } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
    checkServerIdentity: upstreamIdentityCheck(tls.verify, tls.verifyName, tls.revoked),
  };
}

/**
 * undici's connector with the upstream's SNI fixed. undici names a connection after its request: each request
 * gets `servername` from its own options, else from its Host (lib/core/request.js, `this.servername = servername ||
 * getServerName(this.host)`); the client redials whenever that differs from its connection's (lib/dispatcher/
 * client.js, `client[kServerName] !== request.servername` → 'servername changed'), and the connector prefers it to
 * its own option (lib/core/connect.js, `servername || options.servername || util.getServerName(host)`). Requests
 * therefore carry one constant `servername` (no redial), and this connector replaces it with the configured one,
 * dropping `host` so that no SNI is derived from the dialled address either when there is none (an IP literal).
 */
function fixedNameConnector(options: UpstreamClientOptions, tls: UpstreamTls): buildConnector.connector {
  const connect = buildConnector({ timeout: options.connectTimeoutMs, ...tlsConnectOptions(tls) });
  const servername = tls.serverName;
  return ({ hostname, protocol, port, localAddress, httpSocket }, callback) =>
    connect(
      { hostname, protocol, port, ...(servername ? { servername } : {}), ...(localAddress ? { localAddress } : {}), ...(httpSocket ? { httpSocket } : {}) },
      callback,
    );
}

function createHttp1Transport(options: UpstreamClientOptions, origin: URL): Transport {
  const pool = new Pool(origin.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: options.tls ? fixedNameConnector(options, options.tls) : { timeout: options.connectTimeoutMs },
  });
  // The same on every request, so undici never redials for a Host (see fixedNameConnector). Honoured by undici's
  // Request (lib/core/request.js) though its DispatchOptions type does not declare it, hence the spread.
  const named = options.tls ? { servername: options.tls.verifyName } : {};
  const dispatch: Dispatch = (req, sink) =>
    new Promise((resolve, reject) => {
      const { signal } = req;
      // Set once undici hands the request a connection; a cancel before that aborts it on the spot, before
      // any byte of it is written.
      let started: { abort(reason: unknown): void } | undefined;
      const onAbort = () => started?.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (err?: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(signal.aborted ? signal.reason : err);
      };
      pool.dispatch(
        {
          method: req.method,
          path: req.path,
          headers: req.headers,
          body: req.body,
          headersTimeout: req.timeoutMs,
          bodyTimeout: req.timeoutMs,
          ...(req.upgrade ? { upgrade: req.upgrade } : {}),
          ...named,
        },
        {
          onRequestStart(controller) {
            started = controller;
            // Every reason a request is aborted with is an Error (GatewayError, or a timeout's DOMException).
            if (signal.aborted) controller.abort(signal.reason as Error);
          },
          onResponseStart(controller, statusCode, headers) {
            // 1xx informational answers are the upstream's business, not the client's.
            if (statusCode >= 200) sink.start(statusCode, headers, { pause: () => controller.pause(), resume: () => controller.resume() });
          },
          onResponseData(_controller, chunk) {
            sink.data(chunk);
          },
          onResponseEnd() {
            sink.end();
            settle();
          },
          onResponseError(_controller, err) {
            settle(err);
          },
          // The connection left the pool: from here on it is the WebSocket's, bounded by its own limits.
          onRequestUpgrade(_controller, statusCode, headers, socket) {
            sink.upgraded?.(statusCode, headers, socket);
            settle();
          },
        },
      );
    });
  return { dispatch, close: () => pool.close(), destroy: () => pool.destroy() };
}

function createH2Transport(options: UpstreamClientOptions, origin: URL): Transport {
  let session: http2.ClientHttp2Session | undefined;
  // TLS is dialled here, not by http2.connect, which names a connection without `servername` after the host it
  // dials (an endpoint's name): the SNI is the configured one, or none (as for HTTP/1.1, see fixedNameConnector).
  const secure = options.tls && {
    ...tlsConnectOptions(options.tls),
    host: origin.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(origin.port) || 443,
    ALPNProtocols: ['h2'],
    timeout: options.connectTimeoutMs,
  };
  const connect = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const created = http2.connect(origin.origin, secure ? { createConnection: () => tlsConnect(secure) } : { timeout: options.connectTimeoutMs });
    created.on('error', () => created.destroy());
    created.on('goaway', () => created.close());
    created.setTimeout(60_000, () => created.close());
    session = created;
    return created;
  };
  const dispatch: Dispatch = (req, sink) =>
    new Promise((resolve, reject) => {
      // WebSocket needs an HTTP/1.1 connection to upgrade; over h2 it would need extended CONNECT (RFC 8441).
      if (req.upgrade) return reject(new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'websocket_needs_http1'));
      const { host, ...headers } = req.headers;
      const { signal } = req;
      const stream = connect().request(
        { ...headers, ':method': req.method, ':path': req.path, ':authority': host },
        { endStream: req.body === null },
      );
      let failure: unknown;
      let trailers: ResponseHeaders | undefined;
      // A cancelled client (gRPC cancel included) reaches the upstream as RST_STREAM(CANCEL).
      const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
      signal.addEventListener('abort', onAbort, { once: true });
      stream.setTimeout(req.timeoutMs, () => {
        failure = Object.assign(new Error('upstream timed out'), { code: UPSTREAM_TIMEOUT });
        stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.once('error', (err) => (failure ??= err));
      stream.once('response', (responseHeaders) => {
        const { ':status': status, ...rest } = responseHeaders;
        sink.start(Number(status), rest, { pause: () => stream.pause(), resume: () => stream.resume() });
      });
      stream.on('data', (chunk: Buffer) => sink.data(chunk));
      stream.once('trailers', (t) => (trailers = t));
      let ended = false;
      stream.once('end', () => (ended = true));
      // 'close' comes last in every case; only a stream that ended cleanly with NO_ERROR is a complete answer.
      stream.once('close', () => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return reject(signal.reason);
        if (ended && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && failure === undefined) {
          sink.end(trailers);
          return resolve();
        }
        reject(failure ?? new Error(`upstream stream closed (code ${stream.rstCode})`));
      });
      if (Buffer.isBuffer(req.body)) stream.end(req.body);
      // pipeline() destroys the stream when the body fails (client gone, 413, timeout), and the body when
      // the stream fails; the outcome is read in 'close' above.
      else if (req.body) pipeline(req.body, stream, () => {});
    });
  return {
    dispatch,
    close: () =>
      new Promise((resolve) => {
        if (!session || session.closed || session.destroyed) return resolve();
        session.close(() => resolve());
      }),
    destroy: async () => {
      session?.destroy();
    },
  };
}
