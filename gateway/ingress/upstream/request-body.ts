// The request body on its way upstream: counted against the route's limit (413), bounded in time (408 when
// the client stops sending or the whole request takes too long), and read whole first when it is small.
// Reading small bodies first is nginx's proxy_request_buffering: a client that announces a body and never
// sends it holds no upstream connection, so seventy such clients cannot starve a 64-connection pool.
import { Transform, type Readable } from 'node:stream';
import { GatewayError } from '../../core/errors.js';
import type { Exchange, Request } from '../exchange.js';
import type { RequestLife } from '../request-life.js';

/** Bodies up to this size reach the upstream only once complete; larger ones stream as they arrive. */
export const BUFFERED_BODY_BYTES = 64 * 1024;

export interface BodyLimits {
  maxBytes: number;
  /** Longest gap between two body chunks while the gateway is reading. */
  idleMs: number;
  /** The whole request (head and body) must have arrived this long after it started. */
  requestMs: number;
  /** Read the body whole first when it fits in BUFFERED_BODY_BYTES (HTTP/1.1 upstreams; never for gRPC streams). */
  buffer: boolean;
  /** Keep a copy of a streamed body for a retry (see `BodyCopy`). */
  copy?: BodyCopy | undefined;
}

/**
 * A copy of a streamed body, for retrying an answer (gRPC's UNAVAILABLE) once the body went upstream: whole when the
 * client's side ended within BUFFERED_BODY_BYTES, else nothing (a long stream is not held in memory).
 */
export class BodyCopy {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private ended = false;

  add(chunk: Buffer): void {
    if (!this.chunks) return;
    this.size += chunk.length;
    if (this.size > BUFFERED_BODY_BYTES) this.chunks = undefined;
    else this.chunks.push(chunk);
  }

  end(): void {
    this.ended = true;
  }

  /** The whole body, or undefined while it has not ended or when it outgrew the cap. */
  whole(): Buffer | undefined {
    return this.ended && this.chunks ? Buffer.concat(this.chunks, this.size) : undefined;
  }
}

export function hasBody(req: Request): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/**
 * The body as the upstream client takes it: a Buffer when it was read whole, else a stream. Every failure
 * (413, 408, the client gone) aborts the request's `life`, so the upstream side stops too, and an aborted
 * request stops reading. The stream's own errors are therefore only observed, never left unhandled (a
 * request waiting for a free upstream connection has no reader yet, and an 'error' with no listener would
 * end the process).
 */
export async function readRequestBody(req: Request, limits: BodyLimits, ex: Exchange, life: RequestLife): Promise<Readable | Buffer> {
  const abort = (reason: GatewayError) => life.abort(reason);
  const timeout = (reason: string) => abort(new GatewayError('GW_REQUEST_TIMEOUT', reason));
  const deadline = setTimeout(timeout, Math.max(0, ex.started + limits.requestMs - performance.now()), 'request_deadline');
  const idle = setTimeout(function onIdle() {
    // A paused request is waiting on the upstream (backpressure), not on the client.
    if (req.readableFlowing === false) idle.refresh();
    else timeout('body_idle');
  }, limits.idleMs);
  const { copy } = limits;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      ex.bytesIn += chunk.length;
      idle.refresh();
      copy?.add(chunk);
      if (ex.bytesIn <= limits.maxBytes) return done(null, chunk);
      const tooLarge = new GatewayError('GW_BODY_TOO_LARGE');
      abort(tooLarge);
      done(tooLarge);
    },
    flush(done) {
      copy?.end();
      done();
    },
  });
  const stopTimers = () => {
    clearTimeout(deadline);
    clearTimeout(idle);
  };
  req.once('end', stopTimers);
  counter.once('close', stopTimers);
  counter.on('error', stopTimers);
  req.once('error', (err) => counter.destroy(err));
  life.addEventListener('abort', () => counter.destroy(), { once: true });
  req.pipe(counter);
  if (!limits.buffer) return counter;
  return (await readWhole(counter, BUFFERED_BODY_BYTES)) ?? counter;
}

/** The stream's whole content if it ends within `limit` bytes; otherwise what was read goes back into it. */
function readWhole(stream: Readable, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Buffer | undefined) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      resolve(result);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > limit) {
          finish(undefined);
          stream.unshift(Buffer.concat(chunks, size));
          return;
        }
      }
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    // Destroyed before its end (the request was aborted): the caller finds out from its signal.
    const onClose = () => finish(undefined);
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('close', onClose);
  });
}
