// Connection-specific header fields (RFC 9110 §7.6.1): they describe one hop and are never forwarded,
// by the ingress proxy or the egress proxy, in either direction. `Proxy-Authorization` is for the proxy.

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

/** The field names a `Connection` header lists, which are hop-by-hop for this message too. */
export function connectionListed(connection: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (!connection) return undefined;
  const value = Array.isArray(connection) ? connection.join(',') : connection;
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()).filter(Boolean));
}
