// The destination a client asked for, canonicalized once so the allowlist, the address guard, the dial and the
// audit record all see the same value. Pure.
import { GatewayError } from '../core/errors.js';
import { canonicalHost, splitAuthority } from '../core/net/host.js';

export interface Destination {
  /** Lower-case punycode name without trailing dot, or the IP literal in canonical text form (IPv6 unbracketed). */
  host: string;
  port: number;
  /** True when the client named an address rather than a name. */
  isIp: boolean;
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Parses an authority (`CONNECT` target or `Host` header); a missing port takes `defaultPort` when one is given. */
export function parseAuthority(authority: string, defaultPort?: number): Destination {
  const split = splitAuthority(authority);
  const port = split.port === undefined ? defaultPort : parsePort(split.port);
  const host = canonicalHost(split.host);
  if (host === undefined || port === undefined) {
    throw new GatewayError('GW_REQUEST_MALFORMED', 'invalid_destination');
  }
  return { host: host.host, port, isIp: host.isIp };
}

/** Text form for logs and Host headers: IPv6 literals bracketed. */
export function formatAuthority(dest: Destination): string {
  const host = dest.isIp && dest.host.includes(':') ? `[${dest.host}]` : dest.host;
  return `${host}:${dest.port}`;
}
