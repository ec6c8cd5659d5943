// Host/SNI binding: the HTTP Host must name the virtual host the TLS session was made for. A Host owned by
// another virtual host of the listener gets 421 (Gateway API; the gap behind envoy#6767, where a client
// without a certificate reaches a host that demands one over a guest host's connection); one owned by
// none gets 404.
import { GatewayError } from '../../core/errors.js';
import { countHeader } from '../../core/raw-headers.js';
import type { Request } from '../exchange.js';
import type { VirtualHost } from '../runtime.js';
import { authorityHost, type HostIndex } from '../tls/host-index.js';

/** Returns the canonical host of the request, or throws the refusal. */
export function checkHost(req: Request, hosts: HostIndex<VirtualHost>, vhost: VirtualHost): string {
  const host = requestHost(req);
  const owner = hosts.lookup(host);
  // Compared by name: after a reload the connection's virtual host object is the previous runtime's.
  if (owner?.name !== vhost.name) {
    throw owner ? new GatewayError('GW_HOST_MISDIRECTED', 'host_sni_mismatch') : new GatewayError('GW_ROUTE_NOT_FOUND', 'unknown_host');
  }
  return host;
}

function requestHost(req: Request): string {
  // RFC 9112 §3.2: more than one Host is a 400 (Node would silently keep the first).
  if (!('stream' in req) && countHeader(req.rawHeaders, 'host') > 1) throw new GatewayError('GW_REQUEST_MALFORMED', 'duplicate_host');
  const authority = req.headers[':authority'] ?? req.headers.host;
  if (typeof authority !== 'string' || authority === '') throw new GatewayError('GW_REQUEST_MALFORMED', 'missing_host');
  // RFC 9113 §8.3.1: when both are sent they must agree.
  if (req.headers[':authority'] && req.headers.host && req.headers.host !== authority) {
    throw new GatewayError('GW_REQUEST_MALFORMED', 'host_authority_mismatch');
  }
  // A Host that is no valid name or address is owned by no virtual host: 404 below, like any unknown name.
  return authorityHost(authority) ?? '';
}
