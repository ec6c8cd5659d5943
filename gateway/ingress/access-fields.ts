// Fields of the ingress access line that describe the client and its connection. The TLS ones are the same for
// every request of a connection, so they are read once per connection (one WeakMap lookup per request after the
// first) and logged as one shared object.
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

/** A user agent is chosen by the client: logged as a JSON string (no line injection), and only its first part. */
export const MAX_USER_AGENT_LOGGED = 256;

const bySocket = new WeakMap<object, TlsFields>();

export function tlsOf(req: Request): TlsFields | undefined {
  const socket = req.socket as TLSSocket | null | undefined;
  if (!socket) return undefined;
  let fields = bySocket.get(socket);
  if (!fields) {
    const cipher = socket.getCipher?.();
    fields = Object.freeze({
      sni: socket.servername || undefined,
      version: socket.getProtocol?.() ?? undefined,
      cipher: cipher?.standardName ?? cipher?.name,
    });
    bySocket.set(socket, fields);
  }
  return fields;
}

export function userAgentOf(req: Request): string | undefined {
  const agent = req.headers['user-agent'];
  return agent !== undefined && agent.length > MAX_USER_AGENT_LOGGED ? agent.slice(0, MAX_USER_AGENT_LOGGED) : agent;
}
