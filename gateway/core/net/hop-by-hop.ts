// Connection-specific header fields (RFC 9110 §7.6.1): they describe one hop and are never forwarded, by the ingress
// proxy or the egress proxy, in either direction. `Proxy-Authorization` is for the proxy. One predicate for all four
// directions, so none of them can forget the fields a message's own `Connection` header lists.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

const isListedHopByHop = (name: string): boolean => HOP_BY_HOP_HEADERS.has(name);

/**
 * Whether a (lower-case) field name of a message is hop-by-hop: one of the fixed list, or named in the message's
 * own `Connection` header.
 */
export function hopByHop(connection: string | string[] | number | undefined): (name: string) => boolean {
  if (connection === undefined || connection === '') return isListedHopByHop;
  const value = Array.isArray(connection) ? connection.join(',') : String(connection);
  const listed = new Set(value.split(',').map((token) => token.trim().toLowerCase()));
  return (name) => HOP_BY_HOP_HEADERS.has(name) || listed.has(name);
}

/** Copies headers minus the hop-by-hop ones. */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const isHopByHop = hopByHop(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !isHopByHop(name)) out[name] = value;
  }
  return out;
}
