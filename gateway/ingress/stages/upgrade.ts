// Protocol upgrades (HTTP/1.1 `Upgrade`, RFC 9110 §7.8). The one the gateway proxies is WebSocket (RFC 6455), on
// routes that allow it and after every check. Every other protocol is refused 400 whatever the route says, `h2c`
// above all: an h2c upgrade passed through a proxy leaves the client a raw HTTP/2 connection to the backend, where
// its next requests skip every check of the proxy (h2c smuggling). A request that names `Upgrade` without asking
// for one (no `Connection: upgrade`, so it comes as an ordinary request) is refused too: an ordinary request has
// no use for the field, and a backend that reads it alone must never see it. HTTP/2 has no Upgrade (a
// connection-specific field, RFC 9113 §8.2.2), and extended CONNECT (RFC 8441, WebSocket over HTTP/2) is not
// enabled, so neither reaches the pipeline.
import type { IncomingMessage } from 'node:http';
import { DEFAULTS } from '../../config/defaults.js';
import type { RouteConfig } from '../../config/schema.js';
import { GatewayError } from '../../core/errors.js';
import type { Request } from '../exchange.js';

export interface WebSocketLimits {
  /** No byte in either direction for this long closes it. */
  readonly idleTimeoutMs: number;
  /** Closed this long after it opened. */
  readonly maxDurationMs: number;
}

export function compileWebSocket(websocket: RouteConfig['websocket']): WebSocketLimits | undefined {
  if (!websocket) return undefined;
  const limits = websocket === true ? {} : websocket;
  return Object.freeze({
    idleTimeoutMs: limits.idleTimeoutMs ?? DEFAULTS.websocketIdleTimeoutMs,
    maxDurationMs: limits.maxDurationMs ?? DEFAULTS.websocketMaxDurationMs,
  });
}

const refused = (reason: string) => new GatewayError('GW_REQUEST_MALFORMED', reason);

/** An ordinary HTTP/1 request must not carry `Upgrade` (HTTP/2 refuses the field itself). */
export function refuseStrayUpgrade(req: Request): void {
  if (req.headers.upgrade !== undefined && !('stream' in req)) throw refused('upgrade_refused');
}

/** Sec-WebSocket-Key: 16 random bytes in base64 (RFC 6455 §4.1). */
const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * An upgrade request is a WebSocket opening handshake (RFC 6455 §4.1: GET, HTTP/1.1, a key, version 13) without a
 * body (bytes after its head belong to the tunnel, never to a request), or it is refused.
 */
export function checkWebSocketHandshake(req: IncomingMessage): void {
  const { headers } = req;
  if (typeof headers.upgrade !== 'string' || headers.upgrade.trim().toLowerCase() !== 'websocket') throw refused('upgrade_refused');
  if (req.method !== 'GET' || req.httpVersion !== '1.1') throw refused('websocket_handshake');
  const key = headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key) || headers['sec-websocket-version'] !== '13') throw refused('websocket_handshake');
  if ((headers['content-length'] ?? '0') !== '0' || headers['transfer-encoding'] !== undefined) throw refused('upgrade_with_body');
}
