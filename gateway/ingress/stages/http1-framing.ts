// HTTP/1 message framing that llhttp (strict mode; `insecureHTTPParser` is never set) accepts but RFC 9112 §6
// makes an error. llhttp already refuses, before any request reaches the pipeline: Content-Length with a sign,
// spaces inside, a comma list or hex; CL together with TE; a repeated TE line; a TE list not ending in `chunked`
// (in part: see below); bad chunk sizes; CR or LF inside chunk extensions; obs-fold; whitespace before a colon;
// bare CR or NUL in a field. Each of those has a raw-socket test in test/integration/ingress/http1-framing.test.ts.
//
// What it lets through, and we refuse here, first in the pipeline and synchronously (so before llhttp hands us the
// next pipelined request of the same connection):
// - Transfer-Encoding in an HTTP/1.0 request (§6.1: "MUST treat it as if the framing is faulty ... and close"):
//   llhttp decodes the chunks and keeps the connection, so a backend that ignores TE in 1.0 reads a second,
//   smuggled request out of the body.
// - A transfer coding other than `chunked` (`gzip, chunked`): llhttp removes the chunking and the gateway forwards
//   the still-gzipped bytes without the coding that describes them (§6.1: 501). A TE not ending in `chunked`
//   (`TE: gzip`) is refused by llhttp only after it emitted the request, so it is checked here too.
// - An empty Transfer-Encoding (`1#transfer-coding` needs one).
// Every refusal closes the connection (the body's length is unknown), and any request llhttp had already parsed
// from the same connection is refused unforwarded.
// Chunk extensions and a trailer section are accepted: the gateway re-frames the body, so neither reaches the
// backend.
import { GatewayError } from '../../core/errors.js';
import type { Request } from '../exchange.js';

const CLOSE = Object.freeze({ connection: 'close' });

/** Connections with a framing error: whatever llhttp parsed after it is not a request we can trust. */
const faulty = new WeakSet<object>();

function refuse(socket: object, code: 'GW_REQUEST_MALFORMED' | 'GW_TRANSFER_CODING_UNSUPPORTED', reason: string): GatewayError {
  faulty.add(socket);
  return new GatewayError(code, reason, CLOSE);
}

/** Throws the refusal for a request whose framing a lenient backend could read differently; HTTP/2 is exempt. */
export function checkHttp1Framing(req: Request): void {
  if ('stream' in req) return;
  const socket = req.socket;
  if (faulty.has(socket)) throw refuse(socket, 'GW_REQUEST_MALFORMED', 'after_framing_error');
  const te = req.headers['transfer-encoding'];
  if (te === undefined) return;
  if (req.httpVersion === '1.0') throw refuse(socket, 'GW_REQUEST_MALFORMED', 'http10_transfer_encoding');
  // RFC 9110 §5.6.1: empty list elements are ignored; coding names are case-insensitive.
  const codings = te.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
  if (codings.length === 0) throw refuse(socket, 'GW_REQUEST_MALFORMED', 'transfer_encoding_empty');
  if (codings.length !== 1 || codings[0] !== 'chunked') throw refuse(socket, 'GW_TRANSFER_CODING_UNSUPPORTED', 'transfer_coding');
}
