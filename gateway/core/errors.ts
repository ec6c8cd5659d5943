// The closed set of errors the gateway answers with, and the one place they become HTTP responses.
// Every refusal carries a stable machine-readable code (logged, counted, returned) and a short message.
import { STATUS_CODES } from 'node:http';

/**
 * gRPC status codes (grpc/grpc doc/statuscodes.md) a refusal can map to: CANCELLED 1, INVALID_ARGUMENT 3,
 * DEADLINE_EXCEEDED 4, PERMISSION_DENIED 7, RESOURCE_EXHAUSTED 8, UNIMPLEMENTED 12, INTERNAL 13, UNAVAILABLE 14,
 * UNAUTHENTICATED 16.
 */
type GrpcStatus = 1 | 3 | 4 | 7 | 8 | 12 | 13 | 14 | 16;

// Each code's HTTP status and, for gRPC requests, its gRPC status: UNIMPLEMENTED for "no such method" follows
// gRPC's own HTTP-to-gRPC mapping of 404; UNAVAILABLE tells the client a retry elsewhere may succeed.
export const ERRORS = {
  GW_REQUEST_MALFORMED: { status: 400, message: 'malformed request', grpc: 3 },
  GW_PATH_REJECTED: { status: 400, message: 'request path rejected', grpc: 3 },
  GW_AUTHN_INVALID_TOKEN: { status: 401, message: 'invalid token', grpc: 16 },
  GW_AUTHN_MULTIPLE_TOKENS: { status: 401, message: 'more than one token in request', grpc: 16 },
  GW_AUTHN_REQUIRED: { status: 401, message: 'authentication required', grpc: 16 },
  GW_AUTHN_CLIENT_CERT: { status: 403, message: 'client certificate rejected', grpc: 16 },
  GW_AUTHZ_DENIED: { status: 403, message: 'access denied', grpc: 7 },
  GW_ROUTE_NOT_FOUND: { status: 404, message: 'no route', grpc: 12 },
  GW_EGRESS_DENIED: { status: 403, message: 'destination not allowed', grpc: 7 },
  GW_EGRESS_ADDRESS_BLOCKED: { status: 403, message: 'destination address blocked', grpc: 7 },
  GW_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed', grpc: 12 },
  GW_EGRESS_NO_IDENTITY: { status: 407, message: 'proxy authentication required', grpc: 16 },
  GW_REQUEST_TIMEOUT: { status: 408, message: 'request not received in time', grpc: 4 },
  GW_BODY_TOO_LARGE: { status: 413, message: 'request body too large', grpc: 8 },
  GW_HOST_MISDIRECTED: { status: 421, message: 'misdirected request: host not served here', grpc: 3 },
  GW_RATE_LIMITED: { status: 429, message: 'rate limit exceeded', grpc: 8 },
  GW_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large', grpc: 8 },
  // Never sent (the client is gone): nginx's 499, so access logs and metrics tell a cancel from a failure.
  GW_CLIENT_CANCELLED: { status: 499, message: 'client closed request', grpc: 1 },
  GW_INTERNAL: { status: 500, message: 'internal error', grpc: 13 },
  GW_TRANSFER_CODING_UNSUPPORTED: { status: 501, message: 'transfer coding not implemented', grpc: 12 },
  GW_UPSTREAM_UNAVAILABLE: { status: 502, message: 'upstream unavailable', grpc: 14 },
  GW_UPSTREAM_IDENTITY: { status: 502, message: 'upstream identity verification failed', grpc: 14 },
  // The upstream failed after the answer had started: the client sees a reset, never a clean end.
  GW_UPSTREAM_TRUNCATED: { status: 502, message: 'upstream response truncated', grpc: 14 },
  GW_UNAVAILABLE: { status: 503, message: 'service unavailable', grpc: 14 },
  GW_UPSTREAM_OVERLOADED: { status: 503, message: 'upstream overloaded', grpc: 14 },
  // Every endpoint of the upstream fails its health checks or is ejected (docs/traffic.md).
  GW_UPSTREAM_NO_HEALTHY: { status: 503, message: 'no healthy upstream endpoint', grpc: 14 },
  GW_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out', grpc: 4 },
  // A route's fault injection aborted the request: its answer carries the route's own status (InjectedFault).
  GW_FAULT_INJECTED: { status: 503, message: 'fault injected', grpc: 14 },
} as const satisfies Record<string, { status: number; message: string; grpc: GrpcStatus }>;

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

  get grpcStatus(): number {
    return ERRORS[this.code].grpc;
  }
}

/** A fault-injection abort: `GW_FAULT_INJECTED` with the HTTP and gRPC statuses the route configured. */
export class InjectedFault extends GatewayError {
  constructor(
    private readonly httpStatus: number,
    private readonly grpc: number,
  ) {
    super('GW_FAULT_INJECTED', 'abort');
  }

  override get status(): number {
    return this.httpStatus;
  }

  override get grpcStatus(): number {
    return this.grpc;
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
  const { message } = ERRORS[gwErr.code];
  const status = gwErr.status;
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

/** `application/grpc`, `application/grpc+proto`, `application/grpc-web…`: clients that read `grpc-status`, not HTTP. */
export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(?:[+;-]|$)/i.test(contentType);
}

// gRPC's Percent-Encoded: every byte outside 0x20–0x7E, and `%` itself (grpc/grpc doc/PROTOCOL-HTTP2.md).
const percentEncode = (text: string): string =>
  text.replace(/[^\x20-\x24\x26-\x7e]+/g, (run) => [...Buffer.from(run, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));

/**
 * The same refusal for a gRPC client: HTTP 200 and a trailers-only answer (one HEADERS frame with END_STREAM) whose
 * `grpc-status` and `grpc-message` carry it, since gRPC clients report any other HTTP status as a transport
 * failure (a 403 becomes INTERNAL or UNKNOWN in most stacks). The gateway's own headers come along.
 */
export function toGrpcResponse(err: unknown, requestId: string): ErrorResponse {
  const gwErr = err instanceof GatewayError ? err : new GatewayError('GW_INTERNAL');
  const { message } = ERRORS[gwErr.code];
  return {
    status: 200,
    headers: {
      'content-type': 'application/grpc',
      'grpc-status': String(gwErr.grpcStatus),
      'grpc-message': percentEncode(gwErr.reason ? `${message}: ${gwErr.reason}` : message),
      'x-portcullis-code': gwErr.code,
      'x-request-id': requestId,
      ...gwErr.headers,
    },
    body: '',
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
