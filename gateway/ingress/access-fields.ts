// What the pipeline and the access line read of the connection a request came in on: its peer address, SNI and TLS
// session are the same for every request of a connection, so they are read once per connection (one WeakMap lookup
// per request after the first) and logged as one shared object.
import type { TLSSocket } from 'node:tls';
import type { Request } from './exchange.js';

/** What the access line shows of the TLS session a request came in on. */
export interface TlsFields {
  /** The server name the client asked for (SNI), or undefined when it sent none. */
  readonly sni: string | undefined;
  /** `TLSv1.3`, `TLSv1.2`. */
  readonly version: string | undefined;
  /** The negotiated cipher suite, by its IANA name (`TLS_AES_128_GCM_SHA256`). */
  readonly cipher: string | undefined;
}

export interface ConnectionFields {
  readonly remoteAddress: string | undefined;
  readonly tls: TlsFields;
}

const byConnection = new WeakMap<object, ConnectionFields>();

/**
 * The request's connection, or undefined when it is gone already (an HTTP/2 stream reset before it was read). An
 * HTTP/2 request's `req.socket` is a Proxy made per stream, through which every read is a trap: the session is the
 * key, and its socket (one Proxy per session) is read once.
 */
export function connectionOf(req: Request): ConnectionFields | undefined {
  const key = 'stream' in req ? req.stream.session : req.socket;
  if (!key) return undefined;
  let fields = byConnection.get(key);
  if (!fields) {
    const socket = ('stream' in req ? req.stream.session!.socket : req.socket) as TLSSocket;
    const cipher = socket.getCipher?.();
    fields = Object.freeze({
      remoteAddress: socket.remoteAddress,
      tls: Object.freeze({ sni: socket.servername || undefined, version: socket.getProtocol?.() ?? undefined, cipher: cipher?.standardName ?? cipher?.name }),
    });
    byConnection.set(key, fields);
  }
  return fields;
}

/** A user agent is chosen by the client: logged as a JSON string (no line injection), and only its first part. */
export const MAX_USER_AGENT_LOGGED = 256;

export function userAgentOf(req: Request): string | undefined {
  const agent = req.headers['user-agent'];
  return agent !== undefined && agent.length > MAX_USER_AGENT_LOGGED ? agent.slice(0, MAX_USER_AGENT_LOGGED) : agent;
}
