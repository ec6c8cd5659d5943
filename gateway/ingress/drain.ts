// Connection bookkeeping for a graceful stop: nothing that was accepted is lost. On drain, HTTP/2 clients
// get GOAWAY and finish their open streams; an HTTP/1.1 connection that is between requests is closed, one
// that is busy is closed right after its response; a connection still handshaking gets to send its
// request and have it answered. Whatever is still open when the bound runs out is cut.
import type http2 from 'node:http2';
import type { Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

interface Http1State {
  busy: boolean;
  served: number;
}

export interface ConnectionTracker {
  /** Raw TCP connections of an edge listener (passthrough ones included). */
  trackListener(server: Server): void;
  /** HTTP/2 sessions and HTTP/1.1 request state of a terminating server. */
  trackServer(server: http2.Http2SecureServer): void;
  readonly inFlight: number;
  readonly draining: boolean;
  /** Resolves once every connection has closed, or after `ms` with the rest cut. */
  drain(ms: number): Promise<void>;
}

export function createConnectionTracker(): ConnectionTracker {
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const http1 = new Map<TLSSocket, Http1State>();
  let inFlight = 0;
  let draining = false;
  let allClosed: (() => void) | undefined;
  const closed = (socket: Socket) => {
    sockets.delete(socket);
    if (draining && sockets.size === 0) allClosed?.();
  };

  return {
    trackListener(server) {
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => closed(socket));
      });
    },
    trackServer(server) {
      server.on('session', (session: http2.ServerHttp2Session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
        // A session that opened while draining was accepted before the listener closed: its first
        // request is served, then it gets GOAWAY.
        if (draining) session.once('stream', (stream: http2.ServerHttp2Stream) => stream.once('close', () => session.close()));
      });
      server.prependListener('request', (req: { socket: unknown; stream?: unknown }, res: NodeJS.EventEmitter) => {
        inFlight++;
        const socket = req.stream ? undefined : (req.socket as TLSSocket);
        const state = socket ? (http1.get(socket) ?? { busy: false, served: 0 }) : undefined;
        if (socket && state) {
          if (!http1.has(socket)) {
            http1.set(socket, state);
            socket.once('close', () => http1.delete(socket));
          }
          state.busy = true;
          state.served++;
        }
        res.once('close', () => {
          inFlight--;
          if (!socket || !state) return;
          state.busy = false;
          if (draining) socket.end();
        });
      });
    },
    get inFlight() {
      return inFlight;
    },
    get draining() {
      return draining;
    },
    async drain(ms) {
      draining = true;
      for (const session of sessions) session.close();
      for (const [socket, state] of http1) if (!state.busy && state.served > 0) socket.end();
      if (sockets.size > 0) {
        await new Promise<void>((resolve) => {
          allClosed = resolve;
          setTimeout(resolve, ms).unref();
        });
      }
      for (const socket of sockets) socket.destroy();
    },
  };
}
