// Connection pools to upstreams, built once per config: undici's Pool for HTTP/1.1 (keep-alive, bounded
// connections) and one multiplexed node:http2 session for h2 upstreams (gRPC needs trailers end to end,
// which undici's experimental h2 does not expose). Over TLS the gateway presents its SVID and verifies
// the upstream against the mesh bundle and, when configured, its SPIFFE ID.
import http2 from 'node:http2';
import { pipeline, type Readable } from 'node:stream';
import { Pool } from 'undici';
import { createAdmission, type Admission } from './admission.js';
import type { OutgoingHeaders } from '../stages/sanitize-headers.js';
import type { SpiffePeerVerifier } from '../../../certs/verify.js';
import { upstreamIdentityCheck } from './tls-identity.js';

export interface UpstreamTls {
  caPem: string;
  /** The gateway's client certificate (mutual TLS); absent for one-way TLS. */
  certPem?: string;
  keyPem?: string;
  serverName?: string;
  /** Checks the upstream's SPIFFE ID (and revocation); without it the DNS name is checked. */
  verify?: SpiffePeerVerifier;
}

export interface UpstreamClientOptions {
  name: string;
  origin: URL;
  protocol: 'http1' | 'h2';
  tls?: UpstreamTls;
  /** HTTP/1.1: pool connections; h2: concurrent streams on the session. Also the admission's concurrency. */
  connections: number;
  /** Requests that may wait for a free connection or stream; beyond it, 503 at once. */
  maxPendingRequests: number;
  connectTimeoutMs: number;
}

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: OutgoingHeaders;
  body: Readable | Buffer | null;
  /** For the response headers, and then between body chunks (504 when it runs out). */
  timeoutMs: number;
  /** Aborted when the client leaves or a request deadline runs out: the upstream request stops at once. */
  signal: AbortSignal;
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
}

export interface UpstreamClient {
  readonly name: string;
  /** True when answers may end with trailers (HTTP/2, gRPC): the body must not be closed before them. */
  readonly trailers: boolean;
  /** The origin's `host[:port]` as its URL gives it (no port when it is the scheme's default), for the access log. */
  readonly address: string;
  /**
   * Resolves when the answer has ended; rejects on any failure, before or during it, with the signal's
   * reason once it is aborted. Waits for a free slot first (see admission.ts).
   */
  exchange(req: UpstreamRequest, sink: ResponseSink): Promise<void>;
  readonly admission: Pick<Admission, 'active' | 'pending'>;
  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void>;
  /** Cuts every connection and whatever is still running on it (end of a shutdown drain). */
  destroy(): Promise<void>;
}

/** The error a request's upstream wait ends with when the upstream is slower than its timeout. */
export const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';

type Dispatch = (req: UpstreamRequest, sink: ResponseSink) => Promise<void>;

export function createUpstreamClient(options: UpstreamClientOptions): UpstreamClient {
  const transport = options.protocol === 'h2' ? createH2Transport(options) : createHttp1Transport(options);
  const admission = createAdmission({ concurrency: options.connections, maxPending: options.maxPendingRequests });
  return {
    name: options.name,
    address: options.origin.host,
    trailers: options.protocol === 'h2',
    admission,
    async exchange(req, sink) {
      req.signal.throwIfAborted();
      const waiting = admission.acquire(req.signal, req.timeoutMs);
      if (waiting) await waiting;
      try {
        await transport.dispatch(req, sink);
      } finally {
        admission.release();
      }
    },
    close: transport.close,
    destroy: transport.destroy,
  };
}

function tlsConnectOptions(tls: UpstreamTls) {
  return {
    ca: tls.caPem,
    ...(tls.certPem && tls.keyPem ? { cert: tls.certPem, key: tls.keyPem } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
    checkServerIdentity: upstreamIdentityCheck(tls.verify),
  };
}

function createHttp1Transport(options: UpstreamClientOptions): { dispatch: Dispatch; close(): Promise<void>; destroy(): Promise<void> } {
  const pool = new Pool(options.origin.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: {
      timeout: options.connectTimeoutMs,
      ...(options.tls ? tlsConnectOptions(options.tls) : {}),
    },
  });
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
        { method: req.method, path: req.path, headers: req.headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs },
        {
          onRequestStart(controller) {
            started = controller;
            if (signal.aborted) controller.abort(signal.reason);
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
        },
      );
    });
  return { dispatch, close: () => pool.close(), destroy: () => pool.destroy() };
}

function createH2Transport(options: UpstreamClientOptions): { dispatch: Dispatch; close(): Promise<void>; destroy(): Promise<void> } {
  let session: http2.ClientHttp2Session | undefined;
  const connect = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const created = http2.connect(options.origin.origin, {
      ...(options.tls ? tlsConnectOptions(options.tls) : {}),
      timeout: options.connectTimeoutMs,
    } as http2.SecureClientSessionOptions);
    created.on('error', () => created.destroy());
    created.on('goaway', () => created.close());
    created.setTimeout(60_000, () => created.close());
    session = created;
    return created;
  };
  const dispatch: Dispatch = (req, sink) =>
    new Promise((resolve, reject) => {
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
