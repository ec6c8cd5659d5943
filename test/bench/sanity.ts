// Checks each peer must pass before its figures are reported: it does the scenario's work and refuses
// what the scenario's checks must refuse. A proxy that accepts a forged token would be fast for the wrong
// reason, so such a peer's cell is replaced by the failure.
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { connectTunnel, runConnectLoad } from './connect-load.js';
import { EGRESS_HOST, SERVER_NAME, type Alg, type Material } from './material.js';
import type { RunningPeer, ScenarioId } from './scenarios.js';
import type { Upstreams } from './upstream.js';

type Get = (port: number, caPem: string, path: string, token?: string) => Promise<{ status: number; protocol: string | null }>;

const get: Get = (port, caPem, path, token) => {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: SERVER_NAME,
        headers: { host: SERVER_NAME, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ca: caPem,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const protocol = (res.socket as tls.TLSSocket).getProtocol();
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, protocol }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
};

/** The same request over HTTP/2; fails unless the server chose h2 by ALPN. */
const getH2: Get = (port, caPem, path, token) => {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${SERVER_NAME}:${port}`, { ca: caPem, servername: SERVER_NAME, host: '127.0.0.1', ALPNProtocols: ['h2', 'http/1.1'] });
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    session.once('error', fail);
    session.setTimeout(5000, () => fail(new Error('timeout')));
    session.once('connect', () => {
      const socket = session.socket as tls.TLSSocket;
      if (socket.alpnProtocol !== 'h2') return fail(new Error(`ALPN chose ${String(socket.alpnProtocol)}, not h2`));
      const protocol = socket.getProtocol();
      const stream = session.request({ ':path': path, ':authority': SERVER_NAME, ...(token ? { authorization: `Bearer ${token}` } : {}) });
      stream.once('error', fail);
      stream.once('response', (headers) => {
        stream.resume();
        stream.once('end', () => {
          session.close();
          resolve({ status: Number(headers[':status']), protocol });
        });
      });
      stream.end();
    });
  });
};

type Check = () => Promise<string | undefined>;

function expectStatus(port: number, m: Material, path: string, token: string | undefined, label: string, accept: (s: number) => boolean, fetch = get): Check {
  return async () => {
    try {
      const { status, protocol } = await fetch(port, m.caPem, path, token);
      if (protocol !== 'TLSv1.3') return `${label}: negotiated ${protocol}, not TLSv1.3`;
      return accept(status) ? undefined : `${label}: got ${status}`;
    } catch (err) {
      return `${label}: ${(err as Error).message}`;
    }
  };
}

const ok = (s: number) => s === 200;
const refused = (s: number) => s === 401 || s === 403;

function jwtChecks(port: number, m: Material, path: string, alg: Alg, verifiesJwt: boolean, fetch = get): Check[] {
  const p = m.probes[alg];
  const other = m.probes[alg === 'ES256' ? 'RS256' : 'ES256'];
  const check = (token: string | undefined, label: string, accept: (s: number) => boolean) => expectStatus(port, m, path, token, label, accept, fetch);
  const checks = [check(p.valid, `${path} valid ${alg} token → 200`, ok)];
  if (!verifiesJwt) return checks;
  return [
    ...checks,
    check(undefined, `${path} no token → 401/403`, refused),
    check(p.badSignature, `${path} wrong signature → 401/403`, refused),
    check(p.expired, `${path} expired token → 401/403`, refused),
    check(p.wrongAudience, `${path} wrong audience → 401/403`, refused),
    check(p.wrongIssuer, `${path} wrong issuer → 401/403`, refused),
    check(other.valid, `${path} valid token of the other alg (not pinned) → 401/403`, refused),
  ];
}

function egressChecks(port: number, m: Material, upstreams: Upstreams): Check[] {
  return [
    async () => {
      const r = await runConnectLoad({
        proxyPort: port,
        host: EGRESS_HOST,
        port: upstreams.egressPort,
        caPem: m.caPem,
        durationS: 5,
        concurrency: 1,
        newTunnelPerRequest: false,
        maxRequests: 3,
      });
      return r.requests === 3 ? undefined : `CONNECT ${EGRESS_HOST} + TLS + GET: ${r.requests}/3 answered`;
    },
    // The allowlist names one host and port: the same address by another name or port must be refused.
    ...[
      { host: '127.0.0.1', port: upstreams.egressPort },
      { host: EGRESS_HOST, port: upstreams.httpPort },
      { host: 'other.bench.test', port: upstreams.egressPort },
    ].map(
      (dest): Check =>
        async () => {
          try {
            const socket = await connectTunnel({ proxyPort: port, ...dest });
            socket.destroy();
            return `CONNECT ${dest.host}:${dest.port} (not allowlisted) was accepted`;
          } catch {
            return undefined;
          }
        },
    ),
  ];
}

/** Failures of `peer` for `scenario`; empty when it may be measured. */
export async function sanity(
  scenario: ScenarioId,
  peer: RunningPeer,
  m: Material,
  upstreams: Upstreams,
  verifiesJwt: boolean,
): Promise<string[]> {
  const port = peer.ingressPort ?? 0;
  const checks: Check[] = {
    S1: () => [expectStatus(port, m, '/s1', undefined, '/s1 → 200', ok)],
    HS: () => [expectStatus(port, m, '/s1', undefined, '/s1 → 200', ok)],
    'S2-ES256': () => jwtChecks(port, m, '/s2', 'ES256', verifiesJwt),
    'S2-RS256': () => jwtChecks(port, m, '/s2rs', 'RS256', verifiesJwt),
    S3: () => jwtChecks(port, m, '/s3', 'ES256', verifiesJwt),
    'S3-nocache': () => jwtChecks(port, m, '/s3', 'ES256', verifiesJwt),
    'S4-tunnel': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
    'S4-new': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
    'S1-h2': () => [expectStatus(peer.h2Port ?? 0, m, '/s1', undefined, '/s1 over h2 → 200', ok, getH2)],
    'S3-h2': () => jwtChecks(peer.h2Port ?? 0, m, '/s3', 'ES256', verifiesJwt, getH2),
    'S1-3ep': () => [expectStatus(port, m, '/s1-3ep', undefined, '/s1-3ep → 200', ok)],
    'S3-traceoff': () => jwtChecks(port, m, '/s3', 'ES256', verifiesJwt),
    'S3-trace1': () => jwtChecks(port, m, '/s3', 'ES256', verifiesJwt),
    'S3-trace100': () => jwtChecks(port, m, '/s3', 'ES256', verifiesJwt),
    'S4-auditoff': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
    'S4-audit': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
    'S4-new-auditoff': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
    'S4-new-audit': () => egressChecks(peer.egressPort ?? 0, m, upstreams),
  }[scenario]();
  const failures: string[] = [];
  for (const check of checks) {
    const failure = await check();
    if (failure) failures.push(failure);
  }
  return failures;
}

/** The mTLS upstream must refuse a client without a certificate, or S3 would not prove re-origination. */
export async function upstreamDemandsClientCert(m: Material, upstreams: Upstreams): Promise<string | undefined> {
  try {
    const { status } = await get(upstreams.mtlsPort, m.caPem, '/s3');
    // nginx finishes the handshake and answers 400 "No required SSL certificate was sent".
    return status === 200 ? 'the mTLS upstream answered 200 to a client without a certificate' : undefined;
  } catch {
    return undefined;
  }
}
