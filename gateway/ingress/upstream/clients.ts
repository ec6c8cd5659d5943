// Connection pools to upstreams, built once per config: undici's Pool for HTTP/1.1 (keep-alive, bounded
// connections) and one multiplexed node:http2 session for h2 upstreams (gRPC needs trailers end to end,
// which undici's experimental h2 does not expose). Over TLS the gateway presents its SVID and verifies
// the upstream against the mesh bundle and, when configured, its SPIFFE ID.
import http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
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
  connections: number;
  connectTimeoutMs: number;
}

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: OutgoingHeaders;
  body: Readable | null;
  timeoutMs: number;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Pauses and resumes the upstream body (backpressure) or gives up on it (the client went away). */
export interface FlowControl {
  pause(): void;
  resume(): void;
  abort(): void;
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
  /** Resolves when the answer has ended; rejects on any failure, before or during it. */
  exchange(req: UpstreamRequest, sink: ResponseSink): Promise<void>;
  /** Lets in-flight requests finish, then closes the connections. */
  close(): Promise<void>;
}

export function createUpstreamClient(options: UpstreamClientOptions): UpstreamClient {
  return options.protocol === 'h2' ? createH2Client(options) : createHttp1Client(options);
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

function createHttp1Client(options: UpstreamClientOptions): UpstreamClient {
  const pool = new Pool(options.origin.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: {
      timeout: options.connectTimeoutMs,
      ...(options.tls ? tlsConnectOptions(options.tls) : {}),
    },
  });
  return {
    name: options.name,
    address: options.origin.host,
    trailers: false,
    exchange(req, sink) {
      return new Promise((resolve, reject) => {
        pool.dispatch(
          { method: req.method, path: req.path, headers: req.headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs },
          {
            onRequestStart() {},
            onResponseStart(controller, statusCode, headers) {
              // 1xx informational answers are the upstream's business, not the client's.
              if (statusCode >= 200) sink.start(statusCode, headers, { pause: () => controller.pause(), resume: () => controller.resume(), abort: () => controller.abort(new Error('client went away')) });
            },
            onResponseData(_controller, chunk) {
              sink.data(chunk);
            },
            onResponseEnd() {
              sink.end();
              resolve();
            },
            onResponseError(_controller, err) {
              reject(err);
            },
          },
        );
      });
    },
    close: () => pool.close(),
  };
}

function createH2Client(options: UpstreamClientOptions): UpstreamClient {
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
  return {
    name: options.name,
    address: options.origin.host,
    trailers: true,
    exchange(req, sink) {
      return new Promise((resolve, reject) => {
        const { host, ...headers } = req.headers;
        const stream = connect().request(
          { ...headers, ':method': req.method, ':path': req.path, ':authority': host },
          { endStream: req.body === null },
        );
        let trailers: ResponseHeaders | undefined;
        stream.setTimeout(req.timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
        stream.once('error', reject);
        stream.once('close', () => reject(new Error(`upstream stream closed (code ${stream.rstCode})`)));
        stream.once('response', (responseHeaders) => {
          const { ':status': status, ...rest } = responseHeaders;
          sink.start(Number(status), rest, {
            pause: () => stream.pause(),
            resume: () => stream.resume(),
            abort: () => stream.close(http2.constants.NGHTTP2_CANCEL),
          });
        });
        stream.on('data', (chunk: Buffer) => sink.data(chunk));
        stream.once('trailers', (t) => (trailers = t));
        stream.once('end', () => {
          sink.end(trailers);
          resolve();
        });
        if (req.body) req.body.pipe(stream);
      });
    },
    close: () =>
      new Promise((resolve) => {
        if (!session || session.closed) return resolve();
        session.close(() => resolve());
      }),
  };
}
