// Absolute-form HTTP (`GET http://host/path`): the shared decision, then one fresh upstream connection to the
// checked address per request (so every request passes the allowlist and the guard), optionally over TLS
// (origination), with hop-by-hop headers dropped both ways. The original host name is kept for SNI, certificate
// verification and the Host header.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { DEFAULTS } from '../config/defaults.js';
import { endToEndHeaders } from '../core/net/hop-by-hop.js';
import { GatewayError, toHttpResponse } from '../core/errors.js';
import { checkServerName, UPSTREAM_IDENTITY_ERROR } from '../tls/server-identity.js';
import type { RevocationList } from '../../certs/verify.js';
import { attemptRecord, decide, endedEarlyError, recordAttempt, refusalRecord, type InFlight } from './decide.js';
import { formatAuthority, parseAuthority, type Destination } from './destination.js';
import type { Originate } from './runtime.js';
import type { EgressRecord } from './stages/audit.js';
import { connectTcp, type Dialled } from './stages/dial.js';

const HTTP_PORT = 80;

interface Target {
  path: string;
  /** Where the request leaves for: the requested destination, or its origination port. */
  dest: Destination;
  origination: Originate | undefined;
}

/** Absolute-form `http://authority/path`: the raw authority is parsed by our own rules, not by `new URL`. */
function splitAbsoluteForm(url: string): { authority: string; path: string } {
  const match = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!match || match[1]!.includes('@')) throw new GatewayError('GW_REQUEST_MALFORMED', 'not_absolute_form');
  const rest = match[2]!;
  return { authority: match[1]!, path: rest.startsWith('/') ? rest : `/${rest}` };
}

function parseTarget(req: IncomingMessage, originate: ReadonlyMap<string, Originate>): Target {
  const { authority, path } = splitAbsoluteForm(req.url ?? '');
  const dest = parseAuthority(authority, HTTP_PORT);
  const host = req.headers.host;
  // RFC 9112 §3.2.2: a proxy must use the target URI's authority; a Host naming another one is an attempt to
  // get one destination checked and another served (the same split domain fronting exploits).
  const hostDest = host === undefined ? undefined : parseAuthority(host, HTTP_PORT);
  if (hostDest?.host !== dest.host || hostDest.port !== dest.port) throw new GatewayError('GW_REQUEST_MALFORMED', 'host_mismatch');
  const origination = dest.port === HTTP_PORT ? originate.get(dest.host) : undefined;
  return { path, dest: origination ? { ...dest, port: origination.port } : dest, origination };
}

export function refuseResponse(flight: InFlight, res: ServerResponse, err: GatewayError, extra?: Partial<EgressRecord>): void {
  if (!res.headersSent) {
    const r = toHttpResponse(err, flight.attempt.requestId);
    res.writeHead(r.status, r.headers).end(r.body);
  }
  recordAttempt(flight, refusalRecord(flight.rt, flight.attempt, err, extra));
}

export async function handleRequest(flight: InFlight, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { rt, attempt } = flight;
  const decision = await decide(rt, attempt, {
    socket: req.socket,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    target: () => {
      const target = parseTarget(req, rt.originate);
      if (target.origination) attempt.proxyType = 'originate';
      return target;
    },
  });
  if (!decision.allowed) return refuseResponse(flight, res, decision.error);
  try {
    const { origination, dest: leaving, path } = decision.target;
    const dialled = await dial(flight, decision.address, decision.family, leaving, origination);
    if ('error' in dialled) return refuseResponse(flight, res, dialled.error);
    // A client that left (or was cut by a stop or a reload) while this was decided and dialled: its 'close' has
    // passed, so forwardHttp would never hear of it and the attempt would stay open as long as the upstream does.
    if (res.destroyed) {
      dialled.socket.destroy();
      return refuseResponse(flight, res, endedEarlyError(flight) ?? new GatewayError('GW_CLIENT_CANCELLED', 'client_gone'));
    }
    const defaultPort = origination ? DEFAULTS.egressOriginatePort : HTTP_PORT;
    const hostHeader = leaving.port === defaultPort ? formatAuthority(leaving).replace(/:\d+$/, '') : formatAuthority(leaving);
    const result = await forwardHttp(req, res, dialled.socket, { path, hostHeader }, rt.limits.idleTimeoutMs);
    const counts = { bytesIn: result.bytesUp, bytesOut: result.bytesDown };
    if (result.error) return refuseResponse(flight, res, endedEarlyError(flight) ?? result.error, counts);
    recordAttempt(flight,
      attemptRecord(rt, attempt, {
        sni: origination?.tls.serverName,
        allow: true,
        reason: attempt.decision?.reason ?? 'allowed_by_rule',
        status: result.status,
        ...counts,
      }),
    );
  } finally {
    decision.release();
  }
}

async function dial(flight: InFlight, address: string, family: 4 | 6, dest: Destination, origination: Originate | undefined): Promise<Dialled> {
  const { limits, dial: deps } = flight.rt;
  const tcp = await connectTcp({ address, family, port: dest.port }, limits.connectTimeoutMs, deps);
  if ('error' in tcp || !origination) return tcp;
  return originateTls(tcp.socket, origination.tls, limits.connectTimeoutMs);
}

export interface OriginationTls {
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** Name sent as SNI and verified in the server certificate. */
  serverName: string;
  /** `mesh.revoked`: a server certificate listed there is refused, whichever CA issued it. */
  revoked?: RevocationList | undefined;
}

/** Wraps a connected socket in TLS, verifying the server against `ca` (or the system store), `serverName` and `revoked`. */
export function originateTls(socket: Socket, tls: OriginationTls, timeoutMs: number): Promise<{ socket: TLSSocket } | { error: GatewayError }> {
  return new Promise((resolve) => {
    const name = tls.serverName;
    const secure = tlsConnect({
      socket,
      // RFC 6066 §3: SNI carries host names only; an IP is verified against the certificate's IP SANs instead.
      ...(isIP(name) === 0 ? { servername: name } : {}),
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => checkServerName(name, cert, tls.revoked),
    });
    const timer = setTimeout(() => {
      secure.destroy();
      resolve({ error: new GatewayError('GW_UPSTREAM_TIMEOUT', 'tls_handshake_timeout') });
    }, timeoutMs);
    secure.once('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      secure.destroy();
      // A revoked server says so, in egress's snake_case (as `client_certificate_revoked` for its clients).
      const reason = err.code === UPSTREAM_IDENTITY_ERROR ? 'server_certificate_revoked' : 'upstream_tls_verification_failed';
      resolve({ error: new GatewayError('GW_UPSTREAM_IDENTITY', reason) });
    });
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeAllListeners('error');
      resolve({ socket: secure });
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
    upstream.on('timeout', () => upstream.destroy(new GatewayError('GW_UPSTREAM_TIMEOUT', 'upstream_idle')));
    upstream.on('error', (err) => {
      const gwErr = err instanceof GatewayError ? err : new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'upstream_failed');
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
