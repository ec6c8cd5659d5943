// The hop into the mesh: the request as the gateway vouches for it (client headers sanitized, token
// removed unless forwarded, claim and forwarded headers set, the normalized path), sent to the route's
// upstream pool, and the answer streamed back.
import { Transform, type Readable } from 'node:stream';
import { GatewayError } from '../../core/errors.js';
import { HOP_BY_HOP_HEADERS } from '../../core/hop-by-hop.js';
import type { Exchange, Request, Response } from '../exchange.js';
import type { IngressRuntime } from '../runtime.js';
import type { AuthnResult } from '../../jwt/verifier.js';
import type { ForwardedFor } from '../stages/forwarded.js';
import type { CompiledRoute } from '../stages/route.js';
import type { OutgoingHeaders } from '../stages/sanitize-headers.js';
import type { FlowControl, ResponseSink } from './clients.js';
import { UPSTREAM_IDENTITY_ERROR } from './tls-identity.js';

export interface ForwardInput {
  route: CompiledRoute;
  /** Normalized path and the raw query (with its `?`). */
  path: string;
  query: string;
  authn: AuthnResult;
  host: string;
  forwarded: ForwardedFor;
  port: number;
}

export async function forward(req: Request, res: Response, rt: IngressRuntime, input: ForwardInput, ex: Exchange): Promise<void> {
  const { route, authn } = input;
  const client = rt.upstreams.get(route.upstream);
  if (!client) throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'no_pool');
  ex.upstream = client.name;
  const headers = rt.sanitizer.sanitize(req.headers);
  for (const name of authn.removeHeaders) delete headers[name];
  if (authn.removeCookies.length > 0) removeCookies(headers, authn.removeCookies);
  Object.assign(headers, authn.setHeaders);
  rt.forwarded.apply(headers, input.forwarded, input.host, input.port);
  headers['x-request-id'] = ex.id;
  headers.host = requestAuthority(req);
  const query = authn.removeParams.length > 0 ? removeParams(input.query, authn.removeParams) : input.query;
  const body = hasBody(req) ? limitBody(req, route.maxBodyBytes, ex) : null;
  try {
    await client.exchange({ method: ex.method, path: input.path + query, headers, body, timeoutMs: route.timeoutMs }, relayTo(res, ex, client.trailers));
  } catch (err) {
    throw body?.errored instanceof GatewayError ? body.errored : upstreamError(err);
  }
}

function requestAuthority(req: Request): string {
  return (req.headers[':authority'] ?? req.headers.host) as string;
}

function hasBody(req: Request): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return length !== undefined ? length !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/** Counts body bytes as they stream and cuts the request at the route's limit (413). */
function limitBody(req: Request, max: number, ex: Exchange): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      ex.bytesIn += chunk.length;
      if (ex.bytesIn > max) done(new GatewayError('GW_BODY_TOO_LARGE'));
      else done(null, chunk);
    },
  });
  req.on('error', (err) => counter.destroy(err));
  req.pipe(counter);
  return counter;
}

/** The client's response as the sink of the upstream's answer: headers, body with backpressure, trailers. */
function relayTo(res: Response, ex: Exchange, trailers: boolean): ResponseSink {
  let declared = -1;
  let control: FlowControl | undefined;
  return {
    start(statusCode, headers, flow) {
      control = flow;
      ex.status = statusCode;
      // Headers are set, not written: they leave with the first body byte or with the end, so an empty
      // body goes out as one HEADERS frame with END_STREAM, which gRPC trailers-only responses rely on.
      res.statusCode = statusCode;
      for (const name in headers) {
        const value = headers[name];
        if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name)) res.setHeader(name, value);
      }
      // A body that arrives whole (the common small answer) leaves with the headers and the end in one
      // write; HTTP/2 answers may still have trailers to come, so they always end explicitly.
      if (!trailers) declared = Number(headers['content-length'] ?? -1);
      res.on('drain', () => flow.resume());
      // The client went away: stop reading from the upstream.
      res.once('close', () => {
        if (!res.writableFinished) flow.abort();
      });
    },
    data(chunk) {
      ex.bytesOut += chunk.length;
      if (ex.bytesOut === declared) res.end(chunk);
      else if (!(res as NodeJS.WritableStream).write(chunk)) control?.pause();
    },
    end(trailerHeaders) {
      if (trailerHeaders) res.addTrailers(trailerHeaders as Record<string, string>);
      if (!res.writableEnded) res.end();
    },
  };
}

function upstreamError(err: unknown): GatewayError {
  const e = err as { code?: string; name?: string; reason?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === UPSTREAM_IDENTITY_ERROR) return new GatewayError('GW_UPSTREAM_IDENTITY', e.reason);
  if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY/.test(code)) return new GatewayError('GW_UPSTREAM_IDENTITY', code.toLowerCase());
  if (/TIMEOUT/i.test(code) || /Timeout/.test(e.name ?? '')) return new GatewayError('GW_UPSTREAM_TIMEOUT');
  return new GatewayError('GW_UPSTREAM_UNAVAILABLE', code ? code.toLowerCase() : undefined);
}

function removeCookies(headers: OutgoingHeaders, names: readonly string[]): void {
  const cookie = headers.cookie;
  if (typeof cookie !== 'string') return;
  const kept = cookie
    .split(';')
    .filter((pair) => !names.includes(pair.slice(0, pair.indexOf('=')).trim()))
    .join(';');
  if (kept.trim() === '') delete headers.cookie;
  else headers.cookie = kept.trim();
}

function removeParams(query: string, names: readonly string[]): string {
  const params = new URLSearchParams(query);
  for (const name of names) params.delete(name);
  const rest = params.toString();
  return rest ? `?${rest}` : '';
}
