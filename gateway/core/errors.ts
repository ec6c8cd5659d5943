// The closed set of errors the gateway answers with, and the one place they become HTTP responses.
// Every refusal carries a stable machine-readable code (logged, counted, returned) and a short message.
import { STATUS_CODES } from 'node:http';

export const ERRORS = {
  GW_REQUEST_MALFORMED: { status: 400, message: 'malformed request' },
  GW_PATH_REJECTED: { status: 400, message: 'request path rejected' },
  GW_AUTHN_INVALID_TOKEN: { status: 401, message: 'invalid token' },
  GW_AUTHN_MULTIPLE_TOKENS: { status: 401, message: 'more than one token in request' },
  GW_AUTHN_CLIENT_CERT: { status: 403, message: 'client certificate rejected' },
  GW_AUTHZ_DENIED: { status: 403, message: 'access denied' },
  GW_ROUTE_NOT_FOUND: { status: 404, message: 'no route' },
  GW_EGRESS_DENIED: { status: 403, message: 'destination not allowed' },
  GW_EGRESS_ADDRESS_BLOCKED: { status: 403, message: 'destination address blocked' },
  GW_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  GW_EGRESS_NO_IDENTITY: { status: 407, message: 'proxy authentication required' },
  GW_REQUEST_TIMEOUT: { status: 408, message: 'request not received in time' },
  GW_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  GW_HOST_MISDIRECTED: { status: 421, message: 'misdirected request: host does not match TLS server name' },
  GW_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  GW_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  // Never sent (the client is gone): nginx's 499, so access logs and metrics tell a cancel from a failure.
  GW_CLIENT_CANCELLED: { status: 499, message: 'client closed request' },
  GW_INTERNAL: { status: 500, message: 'internal error' },
  GW_UPSTREAM_UNAVAILABLE: { status: 502, message: 'upstream unavailable' },
  GW_UPSTREAM_IDENTITY: { status: 502, message: 'upstream identity verification failed' },
  // The upstream failed after the answer had started: the client sees a reset, never a clean end.
  GW_UPSTREAM_TRUNCATED: { status: 502, message: 'upstream response truncated' },
  GW_UNAVAILABLE: { status: 503, message: 'service unavailable' },
  GW_UPSTREAM_OVERLOADED: { status: 503, message: 'upstream overloaded' },
  // Every endpoint of the upstream fails its health checks or is ejected (docs/traffic.md).
  GW_UPSTREAM_NO_HEALTHY: { status: 503, message: 'no healthy upstream endpoint' },
  GW_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A refusal raised by a pipeline stage. `reason` is a finer detail safe to show (e.g. the deciding policy). */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly reason: string | undefined;
  /** Extra response headers (WWW-Authenticate, Retry-After, RateLimit-*). */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, reason?: string, headers?: Record<string, string>) {
    super(reason ? `${code}: ${reason}` : code);
    this.name = 'GatewayError';
    this.code = code;
    this.reason = reason;
    this.headers = headers;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The single mapping from an error to the bytes the client sees: `{ error, code, reason?, requestId }`. */
export function toHttpResponse(err: unknown, requestId: string): ErrorResponse {
  const gwErr = err instanceof GatewayError ? err : new GatewayError('GW_INTERNAL');
  const { status, message } = ERRORS[gwErr.code];
  const body = JSON.stringify({
    error: message,
    code: gwErr.code,
    ...(gwErr.reason ? { reason: gwErr.reason } : {}),
    requestId,
  });
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'x-portcullis-code': gwErr.code,
      ...gwErr.headers,
    },
    body,
  };
}

/**
 * The same answer as raw HTTP/1.1 bytes, closing the connection: for sockets that have no response object
 * (requests the parser refused, CONNECT tunnels, a headers deadline that ran out).
 */
export function toRawHttpResponse(err: unknown, requestId: string): string {
  const { status, headers, body } = toHttpResponse(err, requestId);
  const head = Object.entries({ ...headers, connection: 'close' })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head}\r\n${body}`;
}
