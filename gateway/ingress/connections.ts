// Connection bookkeeping for the whole gateway, kept without any per-request timer or listener: the
// pipeline marks a request's start and end on its connection, and one sweep per second does the rest.
//  - Slowloris (HTTP/1.1; Node's headersTimeout does not apply to allowHTTP1 connections): a connection
//    must deliver a complete request head within the headers timeout of its opening (else 408) or of its
//    last response (else it is closed as an idle keep-alive connection).
//  - Graceful stop, where nothing that was accepted is lost: HTTP/2 clients get GOAWAY and finish their
//    open streams; an HTTP/1.1 connection between requests is closed, a busy one right after its
//    response; one still handshaking gets to send its request and have it answered. Whatever is still
//    open when the bound runs out is cut.
//  - HTTP/2 abuse (CVE-2023-44487 Rapid Reset and its kin): a session may have at most maxConcurrentStreams
//    requests in the pipeline, counting those whose stream the client already reset, and a session that
//    resets more than maxStreamResetsPerSecond streams in a second gets GOAWAY(ENHANCE_YOUR_CALM) and is
//    closed, as Envoy, nginx and Go do.
//  - Retiring one listener (a reload removed it or moved it to another port), the same way for its connections
//    only: its HTTP/1.1 connections answer their next response with `Connection: close`, HTTP/2 ones get GOAWAY,
//    idle ones close at their idle timeout, and whatever is still open at the bound is cut.
import http2 from 'node:http2';
import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GatewayError } from '../core/errors.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { answerAndClose, connectionLimitsOf, type ConnectionLimits } from './tls/terminate.js';

interface Http1State {
  busy: boolean;
  served: number;
  /** Its listener is retired: the connection closes after its current or next response. */
  closing: boolean;
  /** The response being written, so a retirement can still announce `Connection: close` in it. */
  response?: KeepAlive;
  idleSince: number;
  headersTimeoutMs: number;
}

interface SessionState {
  /** Requests of this session still in the pipeline (their stream may be gone already). */
  active: number;
  resets: number;
  windowStart: number;
  limits: ConnectionLimits;
  /** Read once: a destroyed session's socket proxy throws on any property read. */
  remote: string | undefined;
}

const STATE = Symbol('portcullis.http1');
/** http.ServerResponse's switch for the `Connection` header it writes (the HTTP/2 compat types do not show it). */
type KeepAlive = { shouldKeepAlive: boolean; readonly headersSent: boolean };
type Tracked = TLSSocket & { [STATE]?: Http1State };

export interface ConnectionTracker {
  /** Raw TCP connections of an edge listener (passthrough ones included). */
  trackListener(server: Server): void;
  /** HTTP/2 sessions and HTTP/1.1 connections of a terminating server. */
  trackServer(server: http2.Http2SecureServer): void;
  /**
   * Called by the pipeline around each request, with its HTTP/1.1 socket or HTTP/2 session. False: the
   * session already has as many requests in the pipeline as it may; refuse the stream (nothing is counted).
   */
  requestStarted(connection: unknown): boolean;
  requestEnded(connection: unknown): void;
  /** A client reset a stream of this HTTP/2 session whose answer had not ended. */
  streamReset(session: unknown): void;
  readonly inFlight: number;
  readonly draining: boolean;
  /** Resolves once every connection has closed, or after `ms` with the rest cut. */
  drain(ms: number): Promise<void>;
  /** Drains the connections one listener accepted (it stopped accepting); resolves when they are gone or cut. */
  retire(server: Server, ms: number): Promise<void>;
  /** Stops the sweep (tests that never drain). */
  close(): void;
}

const SWEEP_MS = 250;

export function createConnectionTracker(deps: { logger?: Logger } = {}): ConnectionTracker {
  const sockets = new Set<Socket>();
  const socketsOf = new Map<Server, Set<Socket>>();
  // A TLS socket and the raw socket it wraps share their address pair; that is how a TLS connection is known to
  // belong to a retired listener (Node has no public link from one to the other). The pair costs two system calls
  // per socket, so it is read only while some listener is retiring (a connection per request: 2–3 % of the CPU).
  const retiring = new Set<string>();
  const retiredKeys = new WeakMap<Socket, string>();
  const isRetiring = (socket: Socket): boolean => retiring.size > 0 && retiring.has(connectionKey(socket));
  const sessions = new Map<http2.ServerHttp2Session, SessionState>();
  const http1 = new Set<Tracked>();
  let inFlight = 0;
  let draining = false;
  let allClosed: (() => void) | undefined;

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const socket of http1) {
      const state = socket[STATE]!;
      if (state.busy || now - state.idleSince < state.headersTimeoutMs) continue;
      if (state.served === 0) answerAndClose(socket, new GatewayError('GW_REQUEST_TIMEOUT'));
      else socket.end();
      http1.delete(socket);
    }
  }, SWEEP_MS).unref();

  const state = (socket: unknown) => (socket as Tracked | undefined)?.[STATE];

  return {
    trackListener(server) {
      const own = new Set<Socket>();
      socketsOf.set(server, own);
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        own.add(socket);
        socket.once('close', () => {
          sockets.delete(socket);
          own.delete(socket);
          const key = retiredKeys.get(socket);
          if (key !== undefined) retiring.delete(key);
          if (draining && sockets.size === 0) allClosed?.();
        });
      });
    },
    trackServer(server) {
      const limits = connectionLimitsOf(server);
      const { headersTimeoutMs } = limits;
      server.on('secureConnection', (socket: Tracked) => {
        if (socket.alpnProtocol === 'h2') return;
        socket[STATE] = { busy: false, served: 0, idleSince: Date.now(), headersTimeoutMs, closing: isRetiring(socket) };
        http1.add(socket);
        socket.once('close', () => http1.delete(socket));
      });
      // Runs before the pipeline's handler, while the response head is still unwritten.
      server.prependListener('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
        const s = req.httpVersionMajor === 1 ? state(req.socket) : undefined;
        if (!s) return;
        s.response = res as unknown as KeepAlive;
        if (s.closing) s.response.shouldKeepAlive = false;
      });
      server.on('session', (session: http2.ServerHttp2Session) => {
        sessions.set(session, { active: 0, resets: 0, windowStart: 0, limits, remote: session.socket?.remoteAddress });
        session.once('close', () => sessions.delete(session));
        // A session that opened while draining (or on a retired listener) was accepted before the listener
        // closed: its first request is served, then it gets GOAWAY.
        if (draining || isRetiring(session.socket)) session.once('stream', (stream: http2.ServerHttp2Stream) => stream.once('close', () => session.close()));
      });
    },
    requestStarted(connection) {
      const session = sessions.get(connection as http2.ServerHttp2Session);
      if (session) {
        if (session.active >= session.limits.maxConcurrentStreams) return false;
        session.active++;
      }
      inFlight++;
      const s = state(connection);
      if (s) s.busy = true;
      return true;
    },
    requestEnded(connection) {
      inFlight--;
      const session = sessions.get(connection as http2.ServerHttp2Session);
      if (session) session.active--;
      const s = state(connection);
      if (!s) return;
      s.busy = false;
      s.response = undefined;
      s.served++;
      s.idleSince = Date.now();
      if (draining || s.closing) (connection as Tracked).end();
    },
    streamReset(session) {
      const s = sessions.get(session as http2.ServerHttp2Session);
      if (!s) return;
      const now = Date.now();
      if (now - s.windowStart >= 1_000) {
        s.windowStart = now;
        s.resets = 0;
      }
      if (++s.resets <= s.limits.maxStreamResetsPerSecond) return;
      const abuser = session as http2.ServerHttp2Session;
      sessions.delete(abuser);
      // Gone already (its client left): a destroyed session throws on goaway().
      if (abuser.destroyed) return;
      deps.logger?.warn({ event: LOG_EVENTS.HTTP2_ABUSE, reason: 'stream_resets', resets: s.resets, remote: s.remote });
      // GOAWAY first, then a plain destroy once it is on its way (TLS would drop it otherwise): destroy(code)
      // would also error every open stream, and a stream error nobody listens to ends the process.
      abuser.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      setImmediate(() => abuser.destroy());
    },
    get inFlight() {
      return inFlight;
    },
    get draining() {
      return draining;
    },
    async drain(ms) {
      draining = true;
      for (const session of sessions.keys()) session.close();
      for (const socket of http1) if (!socket[STATE]!.busy && socket[STATE]!.served > 0) socket.end();
      if (sockets.size > 0) {
        await new Promise<void>((resolve) => {
          // Not unref'd: the stop awaits this bound, and with it the audit and log flushes after it; an unref'd
          // bound would let the process end right here should the last sockets close unseen.
          const bound = setTimeout(resolve, ms);
          allClosed = () => {
            clearTimeout(bound);
            resolve();
          };
        });
      }
      for (const socket of sockets) socket.destroy();
      clearInterval(sweep);
    },
    async retire(server, ms) {
      const own = socketsOf.get(server) ?? new Set<Socket>();
      socketsOf.delete(server);
      if (own.size === 0) return;
      for (const socket of own) {
        const key = connectionKey(socket);
        retiring.add(key);
        retiredKeys.set(socket, key);
      }
      for (const session of sessions.keys()) if (isRetiring(session.socket)) session.close();
      for (const socket of http1) {
        if (!isRetiring(socket)) continue;
        const s = socket[STATE]!;
        s.closing = true;
        if (s.busy && s.response && !s.response.headersSent) s.response.shouldKeepAlive = false;
      }
      await new Promise<void>((resolve) => {
        const cut = setTimeout(resolve, ms).unref();
        const check = () => {
          if (own.size > 0) return;
          clearTimeout(cut);
          resolve();
        };
        for (const socket of own) socket.once('close', () => setImmediate(check));
      });
      for (const socket of own) socket.destroy();
    },
    close: () => clearInterval(sweep),
  };
}

function connectionKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localPort}`;
}
