// A WebSocket through the gateway, once every check has passed (pipeline.ts): the opening handshake goes to the
// route's upstream as any request does (sanitized headers, the token replaced by its claims, the upstream's pool,
// TLS and identity checks, admission, endpoint pick), on a connection that then leaves the pool. A 101 answer is
// relayed and the two sockets are piped, bytes as they come: frames are end to end (extensions and subprotocols
// are the client's and the backend's to agree on). Any other answer is relayed and the connection closed. The
// tunnel ends when either side closes, when nothing has passed either way for `idleTimeoutMs`, or `maxDurationMs`
// after it opened; the gateway then cuts both connections (it reads no frames, so it cannot send a Close frame).
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../../core/errors.js';
import { hopByHop } from '../../core/net/hop-by-hop.js';
import type { Exchange } from '../exchange.js';
import type { IngressRuntime } from '../runtime.js';
import type { HeaderEdit } from '../stages/route-filters.js';
import type { WebSocketLimits } from '../stages/upgrade.js';
import type { FlowControl, ResponseHeaders, ResponseSink, UpstreamRequest } from './clients.js';
import { backendClient, markSent, upstreamFailure, upstreamRequest, type ForwardInput } from './forward.js';

export async function proxyWebSocket(
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  rt: IngressRuntime,
  input: ForwardInput,
  limits: WebSocketLimits,
  ex: Exchange,
): Promise<void> {
  const client = backendClient(rt, input, ex);
  // Set, since it has a client.
  const backend = input.backend!;
  const { headers, query } = upstreamRequest(req, rt, input, ex.id);
  ex.trace.inject(headers);
  const upstreamReq: UpstreamRequest = {
    method: 'GET',
    path: input.path + query,
    headers,
    body: null,
    timeoutMs: backend.timeoutMs,
    signal: input.life,
    upgrade: 'websocket',
  };
  const answer = answerTo(socket, ex, input.route.filters.responseHeaders);
  markSent(rt, client, ex);
  try {
    await client.exchange(upstreamReq, answer);
  } catch (err) {
    throw upstreamFailure(err, upstreamReq, ex);
  }
  if (upstreamReq.endpoint) ex.upstreamAddress = upstreamReq.endpoint;
  if (answer.refused) throw new GatewayError('GW_UPSTREAM_UNAVAILABLE', answer.refused);
  // No upgrade: the upstream's own answer was relayed whole.
  if (answer.upstream) await tunnel(socket, answer.upstream, head, limits, ex);
}

/** The handshake's answer: the upstream's connection once it switched, or why its switch was refused. */
interface Answer extends ResponseSink {
  upstream?: Duplex;
  refused?: string;
}

/** The client's socket as the sink of the handshake's answer: 101 switches it over, anything else is relayed. */
function answerTo(socket: Duplex, ex: Exchange, edit: HeaderEdit | undefined): Answer {
  let flow: FlowControl | undefined;
  return {
    start(statusCode, headers, control) {
      flow = control;
      ex.status = statusCode;
      edit?.(headers);
      // Close-delimited (RFC 9112 §6.3): the body as it comes, whatever framing the upstream used.
      socket.write(responseHead(statusCode, headers, 'connection: close\r\n'));
      socket.on('drain', () => flow?.resume());
    },
    data(chunk) {
      ex.bytesOut += chunk.length;
      if (!socket.write(chunk)) flow?.pause();
    },
    end() {
      socket.end();
    },
    upgraded(statusCode, headers, upstream) {
      // A 101 to anything but what was asked for is not a WebSocket the client agreed to; a client gone meanwhile
      // has its cancel reported by the request's signal.
      if (String(headers.upgrade).toLowerCase() !== 'websocket' || socket.destroyed) {
        upstream.destroy();
        if (!socket.destroyed) this.refused = 'bad_upgrade';
        return;
      }
      ex.status = statusCode;
      edit?.(headers);
      socket.write(responseHead(statusCode, headers, 'connection: Upgrade\r\nupgrade: websocket\r\n'));
      this.upstream = upstream;
    },
  };
}

/** A response head with the upstream's end-to-end fields (Sec-WebSocket-Accept, -Protocol, -Extensions, cookies). */
function responseHead(statusCode: number, headers: ResponseHeaders, connection: string): string {
  const isHopByHop = hopByHop(headers.connection);
  let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\n${connection}`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name) || name === 'content-length') continue;
    for (const one of Array.isArray(value) ? value : [value]) head += `${name}: ${one}\r\n`;
  }
  return `${head}\r\n`;
}

/** Pipes the two connections until either closes or a limit runs out; then both are cut. */
function tunnel(client: Socket, upstream: Duplex, head: Buffer, limits: WebSocketLimits, ex: Exchange): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    const cut = (reason?: string) => {
      if (reason && ex.reason === undefined) ex.reason = reason;
      client.destroy();
      upstream.destroy();
    };
    const lifetime = setTimeout(cut, limits.maxDurationMs, 'websocket_max_duration');
    // Bytes either way touch the client's socket (read from it, or written to it), so its idle timer is the tunnel's.
    client.setTimeout(limits.idleTimeoutMs, () => cut('websocket_idle'));
    const closed = () => {
      if (--open > 0) return cut();
      clearTimeout(lifetime);
      resolve();
    };
    client.once('close', closed);
    upstream.once('close', closed);
    client.on('error', () => cut());
    upstream.on('error', () => cut());
    client.on('data', (chunk: Buffer) => (ex.bytesIn += chunk.length));
    upstream.on('data', (chunk: Buffer) => (ex.bytesOut += chunk.length));
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    if (client.destroyed) cut();
  });
}
