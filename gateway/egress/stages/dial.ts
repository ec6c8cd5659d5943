// Leaving the mesh: connect to the address the guard checked (never a fresh lookup of the name: DNS rebinding),
// and inspect the first bytes of a CONNECT tunnel before any of them is forwarded.
import { connect as netConnect, type Socket } from 'node:net';
import { GatewayError } from '../../core/errors.js';
import { looksLikeTls, parseClientHello } from '../../tls/client-hello.js';
import type { Destination } from '../destination.js';
import { checkClientHello } from './handshake-watch.js';

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

export type Dialled = { socket: Socket } | { error: GatewayError };

/** Opens a TCP connection to a checked address; 504 on timeout, 502 on any other failure. Never rejects. */
export function connectTcp(target: DialTarget, timeoutMs: number, deps: DialDeps = {}): Promise<Dialled> {
  const connect = deps.connect ?? ((o) => netConnect(o));
  return new Promise((resolve) => {
    const socket = connect({ host: target.address, port: target.port, family: target.family, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ error: new GatewayError('GW_UPSTREAM_TIMEOUT', 'connect_timeout') });
    }, timeoutMs);
    const fail = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ error: new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'connect_failed') });
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve({ socket });
    });
  });
}

export type FirstBytesVerdict =
  | { ok: true; head: Buffer; sni?: string }
  /** `detail`: the ClientHello parser's error, when the hello was malformed. */
  | { ok: false; end: 'sni_mismatch' | 'sni_encrypted' | 'first_bytes_timeout' | 'client_error'; sni?: string; detail?: string };

/**
 * Reads the client's first bytes of a tunnel without forwarding them. A TLS ClientHello must name the host the
 * CONNECT asked for: a different SNI is domain fronting (the allowlist saw one name, the CDN behind the address
 * would route to another) and ends the tunnel, as does one offering Encrypted Client Hello (handshake-watch.ts). A
 * ClientHello without SNI is let through: the server can then only answer with its default certificate, which is
 * not fronting. Non-TLS streams are not inspected (see docs). The ClientHellos after this one are the watch's.
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
        finish({ ok: true, head: buffered });
        return true;
      }
      const hello = parseClientHello(buffered);
      if (!('error' in hello) && !hello.complete) return false;
      const refusal = checkClientHello(hello, dest.host);
      if (refusal) finish({ ok: false, ...refusal });
      else finish({ ok: true, head: buffered, ...('sni' in hello && hello.sni !== undefined ? { sni: hello.sni } : {}) });
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
