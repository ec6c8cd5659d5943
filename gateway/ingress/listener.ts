// The edge TCP listener: reads the ClientHello's SNI without decrypting, then either splices the raw
// bytes to a passthrough upstream or hands the socket to the terminating TLS server of the virtual host
// the SNI names. Routing below TLS is what lets one port serve both modes (Envoy's tls_inspector +
// filter_chain_match; HAProxy's req.ssl_sni). An SNI that names no virtual host is refused, never sent
// to a default; a ClientHello without SNI goes to the listener's `defaultHost` when it has one.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { AuthzDecision } from '../../policies/types.js';
import type { Logger } from '../core/log.js';
import { atMostEvery, LOG_EVENTS } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ConnectionBudget } from '../core/net/connection-budget.js';
import { sourceKey } from '../core/net/ip.js';
import { looksLikeTls, parseClientHello } from '../tls/client-hello.js';
import { describe } from './stages/authz.js';

/**
 * A passthrough host's policies on one connection: the peer's address, the SNI, the port it came in on (`localPort`:
 * what a listener configured on port 0 actually bound), an id for the logs.
 */
export type PassthroughAuthorizer = (sourceIp: string, sni: string, localPort: number, id: string) => AuthzDecision;

/** Where a connection goes once its SNI is known. */
export type ConnectionTarget =
  | { kind: 'terminate'; vhost: string; server: net.Server }
  | { kind: 'passthrough'; vhost: string; host: string; port: number; connectTimeoutMs: number; authorize?: PassthroughAuthorizer };

export interface ListenerOptions {
  name: string;
  address: string;
  port: number;
  /** How long a client may take to send its ClientHello (slowloris before TLS). */
  helloTimeoutMs: number;
  /** A passthrough connection with no byte either way for this long is closed. */
  idleTimeoutMs: number;
  maxConnections?: number;
  /** Connections open at once per client address (IPv6: per /64); unset, no limit. */
  maxConnectionsPerSource?: number;
}

export interface ListenerDeps {
  logger: Logger;
  metrics?: Pick<Metrics, 'tlsHandshakeFailure'>;
  /** The process's connection budget, shared with every listener; unset, no bound but the listener's own. */
  budget?: ConnectionBudget;
  /** Resolved per connection so a config reload applies to new connections at once. */
  resolveTarget(listener: string, sni: string | undefined): ConnectionTarget | undefined;
}

export interface EdgeListener {
  readonly server: net.Server;
  listen(): Promise<net.AddressInfo>;
  /** A reload that keeps this socket (same address and port) may rename the listener or change its limits. */
  configure(options: ListenerOptions): void;
  /** Stops accepting; open connections are left to their servers' drain logic. */
  close(): Promise<void>;
}

export function createEdgeListener(options: ListenerOptions, deps: ListenerDeps): EdgeListener {
  let current = options;
  const admit = createSourceCounter(deps);
  const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
    if (deps.budget && !deps.budget.admit(socket, current.name)) return;
    const limit = current.maxConnectionsPerSource;
    if (limit === undefined || admit(socket, current.name, limit)) inspectConnection(socket, current, deps);
  });
  const configure = (next: ListenerOptions) => {
    current = next;
    // net.Server's own default: no limit.
    server.maxConnections = next.maxConnections ?? Infinity;
  };
  configure(options);
  return {
    server,
    configure,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.address, () => {
          server.off('error', reject);
          resolve(server.address() as net.AddressInfo);
        });
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A refusal flood is logged at most this often per listener (each one is still counted in the metrics). */
const REFUSAL_LOG_INTERVAL_MS = 1_000;

/**
 * Counts each source's open connections and refuses one over `maxConnectionsPerSource` before it costs a handshake:
 * one client cannot take every connection (and file descriptor) the process has. Sources are counted only while a
 * limit is set, so a limit added by a reload starts from the connections opened after it.
 */
function createSourceCounter(deps: ListenerDeps): (socket: net.Socket, listener: string, limit: number) => boolean {
  const open = new Map<string, number>();
  const logNow = atMostEvery(REFUSAL_LOG_INTERVAL_MS);
  return (socket, listener, limit) => {
    const address = socket.remoteAddress;
    if (address === undefined) return true;
    const source = sourceKey(address);
    const count = open.get(source) ?? 0;
    if (count >= limit) {
      deps.metrics?.tlsHandshakeFailure(listener, 'too_many_connections_from_source');
      if (logNow()) deps.logger.warn({ event: LOG_EVENTS.TLS_REFUSED, listener, reason: 'too_many_connections_from_source', peer: address, limit });
      socket.destroy();
      return false;
    }
    open.set(source, count + 1);
    socket.once('close', () => {
      const left = open.get(source)! - 1;
      if (left === 0) open.delete(source);
      else open.set(source, left);
    });
    return true;
  };
}

function inspectConnection(socket: net.Socket, options: ListenerOptions, deps: ListenerDeps): void {
  let buffered: Buffer = Buffer.alloc(0);
  const refuse = (reason: string, sni?: string, connection?: string) => {
    deps.logger.info({ event: LOG_EVENTS.TLS_REFUSED, listener: options.name, reason, sni, peer: socket.remoteAddress, connection });
    // The label drops the parser's detail after the colon (`bad_client_hello: truncated` → `bad_client_hello`).
    deps.metrics?.tlsHandshakeFailure(options.name, reason.split(':', 1)[0]!);
    socket.destroy();
  };
  const timer = setTimeout(() => refuse('client_hello_timeout'), options.helloTimeoutMs);
  // A client gone before its hello is no timeout: nothing to log, and nothing to hold for the rest of the bound.
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => socket.destroy());
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (!looksLikeTls(buffered)) return finish(() => refuse('not_tls'));
    const hello = parseClientHello(buffered);
    if ('error' in hello) return finish(() => refuse(`bad_client_hello: ${hello.error}`));
    if (!hello.complete) return;
    finish(() => dispatch(socket, buffered, hello.sni, options, deps, refuse));
  };
  const finish = (next: () => void) => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    next();
  };
  socket.on('data', onData);
  socket.resume();
}

function dispatch(
  socket: net.Socket,
  hello: Buffer,
  sni: string | undefined,
  options: ListenerOptions,
  deps: ListenerDeps,
  refuse: (reason: string, sni?: string, connection?: string) => void,
): void {
  const target = deps.resolveTarget(options.name, sni);
  if (!target) return refuse(sni ? 'sni_unknown' : 'sni_missing', sni);
  if (target.kind === 'terminate') {
    socket.removeAllListeners('error');
    // Give the bytes back so the TLS server reads the ClientHello itself.
    socket.unshift(hello);
    target.server.emit('connection', socket);
    return;
  }
  // Only a host that policies name pays for an id and a decision.
  let connection: string | undefined;
  if (target.authorize) {
    connection = randomUUID();
    const decision = target.authorize(socket.remoteAddress ?? '', sni ?? '', socket.localPort ?? 0, connection);
    if (!decision.allowed) {
      // The client's TLS stack then says "access denied" instead of reporting a bare reset.
      socket.write(ACCESS_DENIED_ALERT);
      return refuse(describe(decision), sni, connection);
    }
  }
  splice(socket, hello, target, options, deps, connection);
}

/** A fatal TLS alert record, access_denied (49): valid in plaintext before any ServerHello, in TLS 1.2 and 1.3. */
const ACCESS_DENIED_ALERT = Buffer.from([21, 3, 3, 0, 2, 2, 49]);

/** Passthrough: the gateway never decrypts; it forwards the ClientHello and then pipes both ways. */
function splice(
  client: net.Socket,
  hello: Buffer,
  target: Extract<ConnectionTarget, { kind: 'passthrough' }>,
  options: ListenerOptions,
  deps: ListenerDeps,
  connection: string | undefined,
): void {
  const started = Date.now();
  const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
  const connectTimer = setTimeout(() => upstream.destroy(new Error('connect timeout')), target.connectTimeoutMs);
  let closed = false;
  const close = (err?: Error) => {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    client.destroy();
    upstream.destroy();
    deps.logger.info({
      event: LOG_EVENTS.PASSTHROUGH_CLOSED,
      listener: options.name,
      vhost: target.vhost,
      upstream: `${target.host}:${target.port}`,
      peer: client.remoteAddress,
      connection,
      bytesIn: client.bytesRead,
      bytesOut: client.bytesWritten,
      durationMs: Date.now() - started,
      ...(err ? { error: err.message } : {}),
    });
  };
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    // The client socket's timer is reset by reads and writes alike, so it sees traffic in both directions. Without
    // it a spliced connection (whose TLS the gateway cannot see into) would hold its slot for ever.
    client.setTimeout(options.idleTimeoutMs, () => close(new Error('idle timeout')));
    upstream.write(hello);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', () => close());
  upstream.on('close', () => close());
}
