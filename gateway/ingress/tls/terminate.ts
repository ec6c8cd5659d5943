// One terminating TLS server per virtual host, never bound to a port: the edge listener hands it the
// sockets whose SNI named this host. One server per host (rather than one SNICallback) because client
// certificate requirements (requestCert / rejectUnauthorized) are per server in Node, and a host that
// demands client certificates must not share a handshake policy with one that does not.
import { createHash, hkdfSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { RevocationList, SpiffePeerVerifier } from '../../../certs/verify.js';
import { judgePeer } from '../stages/authn-mtls.js';
import { GatewayError, toRawHttpResponse } from '../../core/errors.js';

export type ClientAuth = 'none' | 'optional' | 'required';

export interface TerminateOptions {
  /** The virtual host's name: its sessions resume on it alone. */
  host: string;
  /** One or several certificate chains with their keys, of different key types (RSA, ECDSA). */
  certificates: readonly { certPem: string; keyPem: string }[];
  /** TLS 1.2 cipher suites, in order of preference (TLS 1.3 suites are OpenSSL's, all strong). */
  ciphers: readonly string[];
  /** Key-exchange groups (`ecdhCurve`), in order of preference. */
  curves: readonly string[];
  clientAuth: ClientAuth;
  /** CA bundle for client certificates (required unless clientAuth is 'none'). */
  clientCaPem?: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  handshakeTimeoutMs: number;
  /** HTTP/1.1: a request head must be complete this long after the connection opens or the last response. */
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderBytes: number;
  maxHeaders: number;
  /** HTTP/2: streams a client may have open at once, and still in the pipeline (reset ones included). */
  maxConcurrentStreams: number;
  /** HTTP/2: streams a client may reset in one second before its connection gets GOAWAY. */
  maxStreamResetsPerSecond: number;
  /**
   * The process's keys for stateless session resumption (shared by its workers and kept across reloads); each host
   * encrypts its tickets with keys derived from them (`sessionBinding`).
   */
  ticketKeys: Buffer;
  /** SPIFFE checks (trust-domain isolation, revocation) on client certificates, at each handshake. */
  verifyPeer?: SpiffePeerVerifier;
  /** Revocation of client certificates from a plain `clientCa`, where there is no `verifyPeer` to check it. */
  revoked?: RevocationList;
  onPeerRefused?(reason: string, socket: TLSSocket): void;
  /** A handshake that failed (no shared cipher or version, bad client certificate, timeout, reset). */
  onHandshakeFailed?(reason: string): void;
}

export type RequestHandler = ((req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => void) & {
  /** HTTP/1.1 requests that ask for a protocol switch (`Connection: upgrade`); unset: all refused. */
  upgrade?: UpgradeHandler;
};

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** The answer to an upgrade request when nothing may be upgraded: 400, and the connection closed. */
export const refuseUpgrade: UpgradeHandler = (_req, socket) => {
  socket.on('error', () => socket.destroy());
  answerAndClose(socket, new GatewayError('GW_REQUEST_MALFORMED', 'upgrade_refused'));
};

/**
 * A resumed session skips the client-certificate check: OpenSSL restores the verdict and the certificate the session
 * was made with. A session made on one host and offered on another would carry the first host's verdict into the
 * second: a certificate from a partner CA trusted by one host, resumed on a host that demands its own CA, arrives
 * `authorized` with no certificate sent. Each host therefore gets its own ticket keys and session id context, derived
 * from the process's keys and bound to the host and to everything its client check depends on: another host's
 * tickets do not decrypt, another context's session ids are not resumed, and a reload that changes the host's client
 * CA or mode ends resumption of the sessions judged under the old one. A host whose check is unchanged keeps
 * resuming across reloads and workers, which share the process's keys.
 */
export function sessionBinding(options: Pick<TerminateOptions, 'host' | 'clientAuth' | 'clientCaPem' | 'verifyPeer' | 'ticketKeys'>): {
  ticketKeys: Buffer;
  sessionIdContext: string;
} {
  const caDigest = createHash('sha256').update(options.clientCaPem ?? '').digest('hex');
  const binding = ['portcullis session', options.host, options.clientAuth, caDigest, options.verifyPeer ? 'spiffe' : 'ca'].join('\0');
  return {
    // Node takes 48 bytes: a 16-byte key name, then the HMAC and AES keys.
    ticketKeys: Buffer.from(hkdfSync('sha256', options.ticketKeys, '', binding, 48)),
    // OpenSSL's limit is 32 bytes.
    sessionIdContext: createHash('sha256').update(binding).digest('hex').slice(0, 32),
  };
}

export function secureContextOptions(options: TerminateOptions): SecureContextOptions {
  return {
    // Arrays: OpenSSL keeps one certificate per key type and serves the one the client's signature algorithms allow.
    cert: options.certificates.map((c) => c.certPem),
    key: options.certificates.map((c) => c.keyPem),
    ...(options.clientCaPem ? { ca: options.clientCaPem } : {}),
    minVersion: options.minVersion,
    ciphers: options.ciphers.join(':'),
    ecdhCurve: options.curves.join(':'),
    honorCipherOrder: true,
    ...sessionBinding(options),
  };
}

/** The per-connection limits the connection tracker enforces for a terminating server. */
export type ConnectionLimits = Pick<TerminateOptions, 'headersTimeoutMs' | 'maxConcurrentStreams' | 'maxStreamResetsPerSecond'>;

const connectionLimits = new WeakMap<http2.Http2SecureServer, ConnectionLimits>();

/** The limits a terminating server was created with. */
export function connectionLimitsOf(server: http2.Http2SecureServer): ConnectionLimits {
  const limits = connectionLimits.get(server);
  if (!limits) throw new Error('not a terminating server');
  return limits;
}

/** The server answers nothing until the caller attaches the pipeline's 'request' handler. */
export function createTerminatingServer(options: TerminateOptions): http2.Http2SecureServer {
  if (options.clientAuth !== 'none' && !options.clientCaPem) {
    throw new Error('client certificates requested but no CA bundle to verify them against');
  }
  const server = http2.createSecureServer(
    {
      ...secureContextOptions(options),
      allowHTTP1: true,
      requestCert: options.clientAuth !== 'none',
      // 'optional' verifies a presented certificate in the authn stage (socket.authorized), so an
      // invalid one is refused there rather than silently treated as anonymous.
      rejectUnauthorized: options.clientAuth === 'required',
      handshakeTimeout: options.handshakeTimeoutMs,
      maxHeaderListPairs: options.maxHeaders,
      maxSessionMemory: 32,
      settings: { maxConcurrentStreams: options.maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes },
    } as http2.SecureServerOptions,
  );
  // The HTTP/1.1 side of allowHTTP1 reads these from the server object, not from the options: unset, the parser
  // would follow a process-wide --insecure-http-parser (every llhttp leniency on, the smuggling classes reopened)
  // and --max-http-header-size.
  Object.assign(server, { insecureHTTPParser: false, maxHeaderSize: options.maxHeaderBytes });
  server.on('clientError', answerParseError);
  // Client-initiated renegotiation (TLS 1.2) costs the server a full handshake per request of the client's choosing
  // and lets a client change its identity mid-connection; nothing we serve needs it (TLS 1.3 has none).
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  server.on('tlsClientError', (err: Error & { code?: string }) => options.onHandshakeFailed?.(handshakeFailureReason(err)));
  const { headersTimeoutMs, maxConcurrentStreams, maxStreamResetsPerSecond } = options;
  connectionLimits.set(server, { headersTimeoutMs, maxConcurrentStreams, maxStreamResetsPerSecond });
  if (options.clientAuth !== 'none') {
    server.on('secureConnection', (socket: TLSSocket) => {
      const verdict = judgePeer(socket, options.verifyPeer, options.revoked);
      if (!verdict || !('refused' in verdict)) return;
      options.onPeerRefused?.(verdict.refused, socket);
      // A required certificate that is revoked or from the wrong trust domain ends the connection here;
      // on 'optional' hosts requests are answered 403 instead, so the client learns why.
      if (options.clientAuth === 'required') socket.destroy();
    });
  }
  // With no 'timeout' listener Node destroys the idle HTTP/2 session or HTTP/1.1 socket itself.
  server.setTimeout(options.idleTimeoutMs);
  return server;
}

/**
 * A short, stable name for a failed handshake, from Node's error code: `ERR_SSL_NO_SHARED_CIPHER` →
 * `no_shared_cipher`, `ERR_TLS_HANDSHAKE_TIMEOUT` → `handshake_timeout`, `ECONNRESET` → `econnreset`. OpenSSL's
 * reasons are a fixed list, so the label's values stay few.
 */
export function handshakeFailureReason(err: { code?: string }): string {
  return (err.code ?? 'unknown').replace(/^ERR_(SSL_|TLS_)?/, '').toLowerCase();
}

/**
 * HTTP/1.1 requests llhttp refuses to parse (smuggling attempts, oversized headers) are answered with
 * the gateway's error body and the connection closed; the request never reached the pipeline.
 */
function answerParseError(err: Error & { code?: string }, socket: Duplex): void {
  answerAndClose(
    socket,
    new GatewayError(err.code === 'HPE_HEADER_OVERFLOW' ? 'GW_HEADERS_TOO_LARGE' : 'GW_REQUEST_MALFORMED', err.code?.toLowerCase()),
  );
}

/** Writes the gateway's error response straight to a socket that has no response object, then closes it. */
export function answerAndClose(socket: Duplex, error: GatewayError, requestId = 'none'): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(toRawHttpResponse(error, requestId));
}
