// Leaving the mesh: connect to the address the guard checked (never a fresh lookup of the name: DNS rebinding),
// inspect the first bytes of a CONNECT tunnel, and forward absolute-form HTTP requests, optionally over TLS
// (origination). The original host name is kept for SNI, certificate verification and the Host header.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, checkServerIdentity, type TLSSocket } from 'node:tls';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { GatewayError } from '../../core/errors.js';
import { looksLikeTls, parseClientHello } from '../../ingress/tls/client-hello.js';
import type { Destination } from '../destination.js';
import { endToEndHeaders } from '../../core/net/hop-by-hop.js';

export type ConnectFn = (options: { host: string; port: number; family: 4 | 6; allowHalfOpen: boolean }) => Socket;

export interface DialDeps {
  /** Seam for the TCP connect; default `net.connect`. Receives only addresses the guard allowed. */
  connect?: ConnectFn;
}

export interface DialTarget {
  address: string;
  family: 4 | 6;
  port: number;
}

/** Opens a TCP connection to a checked address; 504 on timeout, 502 on any other failure. */
export function connectTcp(target: DialTarget, timeoutMs: number, deps: DialDeps = {}): Promise<Socket> {
  const connect = deps.connect ?? ((o) => netConnect(o));
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.address, port: target.port, family: target.family, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new GatewayError('GW_UPSTREAM_TIMEOUT', 'connect timed out'));
    }, timeoutMs);
    const fail = (): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'connect failed'));
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

export type FirstBytesVerdict =
  | { ok: true; head: Buffer; sni?: string; tls: boolean }
  | { ok: false; end: 'sni_mismatch' | 'first_bytes_timeout' | 'client_error'; sni?: string; detail?: string };

/**
 * Reads the client's first bytes of a tunnel without forwarding them. A TLS ClientHello must name the host the
 * CONNECT asked for: a different SNI is domain fronting (the allowlist saw one name, the CDN behind the address
 * would route to another) and ends the tunnel. A ClientHello without SNI is let through: the server can then only
 * answer with its default certificate, which is not fronting. Non-TLS streams are not inspected (see docs).
 */
export function inspectFirstBytes(client: Socket, dest: Destination, initial: Buffer, timeoutMs: number): Promise<FirstBytesVerdict> {
  return new Promise((resolve) => {
    let buffered = initial;
    const finish = (verdict: FirstBytesVerdict): void => {
      clearTimeout(timer);
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('error', onEnd);
      client.off('close', onEnd);
      client.pause();
      resolve(verdict);
    };
    const decide = (): boolean => {
      if (buffered.length === 0) return false;
      if (!looksLikeTls(buffered)) {
        finish({ ok: true, head: buffered, tls: false });
        return true;
      }
      const hello = parseClientHello(buffered);
      if ('error' in hello) {
        finish({ ok: false, end: 'sni_mismatch', detail: hello.error });
        return true;
      }
      if (!hello.complete) return false;
      if (hello.sni !== undefined && hello.sni !== dest.host) {
        finish({ ok: false, end: 'sni_mismatch', sni: hello.sni });
      } else {
        finish({ ok: true, head: buffered, tls: true, ...(hello.sni !== undefined ? { sni: hello.sni } : {}) });
      }
      return true;
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      decide();
    };
    const onEnd = (): void => finish({ ok: false, end: 'client_error' });
    const timer = setTimeout(() => finish({ ok: false, end: 'first_bytes_timeout' }), timeoutMs);
    if (decide()) return;
    client.on('data', onData);
    client.once('end', onEnd);
    client.once('error', onEnd);
    client.once('close', onEnd);
    client.resume();
  });
}

export interface OriginationTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name sent as SNI and verified in the server certificate. */
  serverName: string;
}

/** Wraps a connected socket in TLS, verifying the server against `ca` (or the system store) and `serverName`. */
export function originateTls(socket: Socket, tls: OriginationTls, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const name = tls.serverName;
    const secure = tlsConnect({
      socket,
      // RFC 6066 §3: SNI carries host names only; an IP is verified against the certificate's IP SANs instead.
      ...(isIP(name) === 0 ? { servername: name } : {}),
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new GatewayError('GW_UPSTREAM_TIMEOUT', 'tls handshake timed out'));
    }, timeoutMs);
    secure.once('error', () => {
      clearTimeout(timer);
      secure.destroy();
      reject(new GatewayError('GW_UPSTREAM_IDENTITY', 'upstream tls verification failed'));
    });
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeAllListeners('error');
      resolve(secure);
    });
  });
}

export interface ForwardResult {
  bytesUp: number;
  bytesDown: number;
  status?: number;
  /** Set when the exchange failed after the decision; the code the client saw, if any. */
  error?: GatewayError;
}

/**
 * Sends one absolute-form request over `socket` (already connected, and TLS-wrapped when originating) and streams
 * the response back. One upstream connection per request: every request passes the allowlist and the guard.
 */
export function forwardHttp(
  req: IncomingMessage,
  res: ServerResponse,
  socket: Socket,
  target: { path: string; hostHeader: string },
  idleTimeoutMs: number,
): Promise<ForwardResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let status: number | undefined;
    let settled = false;
    const settle = (error?: GatewayError): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ bytesUp, bytesDown, ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}) });
    };
    const upstream = httpRequest({
      method: req.method,
      path: target.path,
      headers: { ...endToEndHeaders(req.headers), host: target.hostHeader },
      createConnection: () => socket,
      timeout: idleTimeoutMs,
    });
    upstream.on('timeout', () => upstream.destroy(new GatewayError('GW_UPSTREAM_TIMEOUT', 'upstream idle')));
    upstream.on('error', (err) => {
      const gwErr = err instanceof GatewayError ? err : new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'upstream failed');
      if (!res.headersSent) {
        settle(gwErr);
      } else {
        res.destroy();
        settle(gwErr);
      }
    });
    upstream.on('response', (response) => {
      status = response.statusCode ?? 502;
      res.writeHead(status, endToEndHeaders(response.headers));
      response.on('data', (chunk: Buffer) => {
        bytesDown += chunk.length;
      });
      response.pipe(res);
      res.once('close', () => settle());
    });
    req.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    req.pipe(upstream);
    req.once('error', () => upstream.destroy());
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  });
}
