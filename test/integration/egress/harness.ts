// Shared fixtures for the egress tests: counting upstreams on 127.0.0.1, a proxy with an audit file, raw proxy
// requests (for notations curl would normalize before sending), curl, and the test PKI written to a temp folder.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../../gateway/core/log.js';
import type { EgressConfig } from '../../../gateway/config/egress-schema.js';
import type { JwtProviderConfig } from '../../../gateway/config/schema.js';
import { egressRateLimits } from '../../../gateway/egress/runtime.js';
import { createEgressServer, type EgressServerDeps } from '../../../gateway/egress/server.js';
import { createJwtAuthn } from '../../../gateway/jwt/verifier.js';
import { createRateLimiter } from '../../../gateway/limits/rate-limiter.js';
import { testPki } from '../../helpers/pki.js';

export const silentLogger = createLogger('silent');

export interface Upstream {
  port: number;
  /** Requests served. */
  hits: number;
  /** TCP connections accepted: a blocked attempt must not even open one. */
  connections: number;
  /** Headers of the last request. */
  lastHeaders: IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Listens on 127.0.0.1:0 and counts what reaches `server`; the returned object's counts are live. */
async function countingUpstream(server: Server, respond: RequestListener): Promise<Upstream & { secureConnections: number }> {
  const upstream: Upstream & { secureConnections: number } = {
    port: 0,
    hits: 0,
    connections: 0,
    secureConnections: 0,
    lastHeaders: undefined,
    close: () => closeServer(server),
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    upstream.hits++;
    upstream.lastHeaders = req.headers;
    respond(req, res);
  });
  server.on('connection', () => upstream.connections++);
  server.on('secureConnection', () => upstream.secureConnections++);
  upstream.port = await listen(server);
  return upstream;
}

/** Plain HTTP upstream: `/big` answers 64 KiB, anything else `hello from <name>`; every request counted. */
export function startHttpUpstream(name = 'upstream'): Promise<Upstream> {
  return countingUpstream(createHttpServer(), (req, res) => {
    res.end(req.url === '/big' ? Buffer.alloc(65_536, 0x61) : `hello from ${name}`);
  });
}

export interface TlsUpstream extends Upstream {
  secureConnections: number;
  /** The serial number of the server certificate, as `X509Certificate.serialNumber` prints it. */
  serial: string;
}

/** HTTPS upstream for `secure.test` signed by the test CA; asks for (but does not require) a client certificate. */
export async function startTlsUpstream(): Promise<TlsUpstream> {
  const pki = testPki();
  const leaf = pki.issue({ dnsNames: ['secure.test'] });
  const server = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: false });
  server.on('tlsClientError', () => undefined);
  const upstream = await countingUpstream(server, (req, res) => {
    const sock = req.socket as TLSSocket;
    const peer = sock.authorized ? sock.getPeerX509Certificate()?.subjectAltName : undefined;
    res.end(`tls hello; client=${peer ?? 'none'}`);
  });
  return Object.assign(upstream, { serial: new X509Certificate(leaf.certPem).serialNumber });
}

export interface TempDir {
  path: string;
  file(name: string, content: string): string;
  remove(): void;
}

export function tempDir(): TempDir {
  const path = mkdtempSync(join(tmpdir(), 'portcullis-egress-'));
  return {
    path,
    file(name, content) {
      const p = join(path, name);
      writeFileSync(p, content);
      return p;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

export interface Proxy {
  port: number;
  auditFile: string;
  close(): Promise<void>;
  /** Audit records written so far; complete only after `close()`. */
  records(): Record<string, unknown>[];
}

/**
 * The grant most tests need: callers from 127.0.0.1 are the source identity `local`, allowed to `host:port` (rule
 * named after its first label), and `host` resolves to 127.0.0.1, which the address guard lets through.
 */
export function localGrant(host: string, port: number): Pick<EgressConfig, 'sourceIdentities' | 'allow' | 'staticHosts' | 'addressGuard'> {
  return {
    sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
    allow: [{ name: host.split('.')[0]!, identities: ['local'], hosts: [host], ports: [port] }],
    staticHosts: [{ host, addresses: ['127.0.0.1'] }],
    addressGuard: { allowAddresses: ['127.0.0.1'] },
  };
}

/** The proxy as the gateway runs it, with the shared services app.ts would give it made here (JWT, rate limiter). */
export async function startProxy(
  dir: TempDir,
  config: Omit<EgressConfig, 'listener' | 'audit'> & { listener?: Partial<EgressConfig['listener']> },
  deps: Partial<EgressServerDeps> & { jwtProviders?: JwtProviderConfig[] } = {},
): Promise<Proxy> {
  const auditFile = join(dir.path, `audit-${Math.random().toString(36).slice(2)}.jsonl`);
  const egress: EgressConfig = { ...config, listener: { port: 0, address: '127.0.0.1', ...config.listener }, audit: { file: auditFile } };
  const { jwtProviders, ...rest } = deps;
  const jwt = jwtProviders ? createJwtAuthn(jwtProviders, {}, { logger: silentLogger }) : undefined;
  const limits = egressRateLimits(egress);
  const limiter = limits.length > 0 ? createRateLimiter(limits, undefined, { logger: silentLogger }) : undefined;
  const server = createEgressServer(egress, { logger: silentLogger, jwt, limiter, ...rest });
  const { port } = await server.listen();
  return {
    port,
    auditFile,
    close: async () => {
      await server.close();
      jwt?.close();
      await limiter?.close();
    },
    records: () => {
      let text = '';
      try {
        text = readFileSync(auditFile, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  socket: Socket;
}

/**
 * Writes `request` to the proxy and reads one response head (and, for refusals, the body until close).
 * `localAddress` picks the client's source address (127.0.0.2 is as local as 127.0.0.1).
 */
export function rawRequest(port: number, request: string, localAddress?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (): void => {
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response head: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      done = true;
      socket.removeAllListeners('data');
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4), socket });
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // A 200 to CONNECT has no body: hand the socket over as soon as the head is complete.
      if (!done && /^HTTP\/1\.1 200 /.test(buf.toString('latin1')) && buf.includes('\r\n\r\n')) finish();
    });
    socket.on('end', () => {
      if (!done) finish();
    });
    socket.on('error', (err) => {
      if (!done) reject(err);
    });
    socket.write(request);
  });
}

export const connectRequest = (authority: string): string => `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function curl(args: string[]): Promise<CurlResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)('curl', ['-sS', '--max-time', '10', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Waits until `predicate` holds (audit writes are asynchronous until close). */
export async function eventually(predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
