// The admin plane: its own listener (default 127.0.0.1:9901), never the data-plane ports.
//   GET /healthz  liveness: the event loop answers            open
//   GET /readyz   readiness, from deps.ready()                open
//   GET /metrics  Prometheus text from deps.registry          open
//   GET /config   the running config, secrets redacted        bearer token or allowed mTLS SPIFFE ID
//   POST /reload  deps.reload(): 200, or 400 with the issues   bearer token or allowed mTLS SPIFFE ID
//   GET /upstreams upstream endpoints and their health         bearer token or allowed mTLS SPIFFE ID
// Health and metrics are unauthenticated like Envoy's and Istio's, which is why the plane binds to loopback unless
// told otherwise. With neither a token nor mTLS configured the two secured endpoints do not exist (404): they are
// never open. Plain node:http: five fixed routes need no framework, and the TLS socket is ours to inspect.
// A plain-HTTP plane answers only Hosts a DNS-rebinding page cannot bring (see hostAllowed).
// A reload applies the `admin` section like any other: a new token or TLS material takes effect on the same socket,
// a new address or port is bound before the old socket closes (its open connections get a short grace).
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { spiffeIdFromCertificate } from '../../certs/spiffe-id.js';
import { compileRevocationList, revocationOf, type RevocationList } from '../../certs/verify.js';
import { DEFAULTS } from '../config/defaults.js';
import type { Config, MeshIdentityConfig } from '../config/schema.js';
import type { AdminConfig } from '../config/operations-schema.js';
import { clientCertTlsOptions } from '../core/client-cert-tls.js';
import { GatewayError, toHttpResponse } from '../core/errors.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { ReloadRefused, type PreparedChange, type Reloadable } from '../core/reloadable.js';
import type { ReloadResult } from '../reload.js';
import { redactConfig } from './redact.js';


export interface AdminServerDeps {
  logger: Logger;
  /** The gateway's registry, or in multi-process mode one that aggregates the workers' at each scrape. */
  registry: Pick<Registry, 'metrics' | 'contentType'>;
  /** Listeners up, certificates valid, config loaded, JWKS warmed: the composition root decides. */
  ready(): boolean | Promise<boolean>;
  reload(): Promise<ReloadResult>;
  /** The running configuration (redacted here before it is shown), or a promise of it. */
  config(): unknown;
  /** SHA-256 of the running config (config/hash.ts), sent with `/config` as `x-portcullis-config-hash`. */
  configHash?(): string | undefined;
  /** Mesh trust bundle (PEM): the client CA when `admin.tls.clientCa` is unset. */
  meshBundlePem?: string;
  /** `mesh.revoked`: refused whichever CA issued the client certificate. */
  meshRevoked?: MeshIdentityConfig['revoked'];
  /** Each upstream's endpoints and their health; unset (404) where no single process knows them (several workers). */
  upstreams?(): unknown;
}

export interface AdminServer extends Reloadable {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}


/** Log events of the admin plane. */

/** Short tokens can be guessed; 16 characters of a random token is already 80+ bits. */
const MIN_TOKEN_LENGTH = 16;
/**
 * Probes, scrapers and operators need a handful of connections; the cap keeps a flood of them from taking the
 * process's file descriptors from the data plane (excess connections are closed as they arrive). The checking
 * interval enforces the headers timeout within a second, not Node's default 30 s; the handshake timeout bounds a
 * TLS client that never finishes its hello (Node's default is 120 s).
 */
const ADMIN_MAX_CONNECTIONS = 64;
const PLANE_LIMITS = { headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 8192, connectionsCheckingInterval: 1_000, handshakeTimeout: 10_000 };
/** Connections still open on an admin socket a reload moved away from are cut after this. */
const RETIRE_GRACE_MS = 5_000;
/** `/reload` takes no body; anything beyond a few bytes is not a reload request. */
const MAX_BODY_BYTES = 1024;
/** RFC 9110 §11.1: the scheme name is case-insensitive (`bearer x` is valid). */
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/i;
/** RFC 6750 §3: a 401 names the scheme the client should use. */
const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="portcullis-admin"' };

interface Endpoint {
  method: 'GET' | 'POST';
  secured: boolean;
  handle(req: IncomingMessage, res: ServerResponse, who: string | undefined): Promise<void>;
}

/** Who may use the secured endpoints, compiled from one `admin` section. */
interface AdminAuth {
  readonly tokenDigest: Buffer | undefined;
  readonly tls: AdminConfig['tls'];
  readonly tlsOptions: ReturnType<typeof clientCertTlsOptions> | undefined;
  readonly allowedIds: ReadonlySet<string>;
  readonly revoked: RevocationList;
  readonly securedEnabled: boolean;
}

function compileAuth(config: AdminConfig | undefined, meshBundlePem: string | undefined, meshRevoked: MeshIdentityConfig['revoked']): AdminAuth {
  const tokenDigest = config?.tokenFile !== undefined ? readAdminToken(config.tokenFile) : undefined;
  const tls = config?.tls;
  const tlsOptions = tls ? clientCertTlsOptions('admin.tls', tls, meshBundlePem, false) : undefined;
  const allowedIds = new Set(tls?.allowedSpiffeIds ?? []);
  return { tokenDigest, tls, tlsOptions, allowedIds, revoked: compileRevocationList(meshRevoked), securedEnabled: tokenDigest !== undefined || tls !== undefined };
}

/** One bound admin socket and the credentials its requests are checked against (swapped by a reload). */
interface Plane {
  readonly server: Server;
  readonly address: string;
  readonly port: number;
  auth: AdminAuth;
}

export function createAdminServer(config: AdminConfig | undefined, deps: AdminServerDeps): AdminServer {
  let reloads: Promise<unknown> = Promise.resolve();

  const endpoints: Record<string, Endpoint> = {
    '/healthz': { method: 'GET', secured: false, handle: async (_req, res) => json(res, 200, { status: 'ok' }) },
    '/readyz': {
      method: 'GET',
      secured: false,
      async handle(_req, res) {
        if (!(await deps.ready())) throw new GatewayError('GW_UNAVAILABLE', 'not_ready');
        json(res, 200, { status: 'ready' });
      },
    },
    '/metrics': {
      method: 'GET',
      secured: false,
      async handle(_req, res) {
        const body = await deps.registry.metrics();
        send(res, 200, deps.registry.contentType, body);
      },
    },
    '/config': {
      method: 'GET',
      secured: true,
      async handle(_req, res) {
        const hash = deps.configHash?.();
        json(res, 200, redactConfig(await deps.config()), hash !== undefined ? { 'x-portcullis-config-hash': hash } : {});
      },
    },
    ...(deps.upstreams ? { '/upstreams': { method: 'GET', secured: true, handle: async (_req, res) => json(res, 200, { upstreams: deps.upstreams?.() }) } } : {}),
    '/reload': {
      method: 'POST',
      secured: true,
      async handle(req, res, who) {
        await drainBody(req);
        // One reload at a time: a second request waits for the first instead of racing it.
        const result = reloads.then(() => deps.reload());
        reloads = result.catch(() => undefined);
        const outcome = await result;
        deps.logger.info({ event: LOG_EVENTS.ADMIN_REQUEST, action: 'reload', by: who, ok: outcome.ok });
        json(res, outcome.ok ? 200 : 400, outcome);
      },
    },
  };

  /** Who may use a secured endpoint: the token holder or an allowed SPIFFE ID; throws 401/403 otherwise. */
  function authenticate(req: IncomingMessage, auth: AdminAuth): string {
    const { tokenDigest, tls, allowedIds } = auth;
    const authorization = req.headersDistinct.authorization;
    if (authorization !== undefined) {
      const match = authorization.length === 1 ? BEARER.exec(authorization[0]!) : null;
      if (tokenDigest !== undefined && match && timingSafeEqual(digest(match[1]!), tokenDigest)) return 'token';
      throw new GatewayError('GW_AUTHN_INVALID_TOKEN', 'invalid_admin_token', BEARER_CHALLENGE);
    }
    if (tls) {
      const socket = req.socket as TLSSocket;
      const presented = socket.getPeerCertificate().raw !== undefined;
      if (presented) {
        if (!socket.authorized) throw new GatewayError('GW_AUTHN_CLIENT_CERT', 'client_certificate_unverified');
        const cert = socket.getPeerX509Certificate();
        const id = cert ? spiffeIdFromCertificate(cert) : undefined;
        if (cert && revocationOf(cert, auth.revoked, id)) throw new GatewayError('GW_AUTHN_CLIENT_CERT', 'client_certificate_revoked');
        if (id !== undefined && allowedIds.has(id)) return id;
        throw new GatewayError('GW_AUTHZ_DENIED', 'spiffe_id_not_allowed');
      }
    }
    throw new GatewayError('GW_AUTHN_INVALID_TOKEN', 'admin_credentials_required', tokenDigest !== undefined ? BEARER_CHALLENGE : undefined);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, plane: Plane): Promise<void> {
    const { auth } = plane;
    // Over TLS a rebinding page never gets this far: the browser checks our certificate against its own name.
    if (!auth.tls && !hostAllowed(req.headers.host, plane.address)) throw new GatewayError('GW_HOST_MISDIRECTED', 'admin_host_not_allowed');
    const path = (req.url ?? '').split('?', 1)[0]!;
    const endpoint = Object.hasOwn(endpoints, path) ? endpoints[path] : undefined;
    if (!endpoint || (endpoint.secured && !auth.securedEnabled)) throw new GatewayError('GW_ROUTE_NOT_FOUND', endpoint ? 'admin_endpoint_disabled' : undefined);
    const allowed = endpoint.method === 'GET' ? ['GET', 'HEAD'] : [endpoint.method];
    // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
    if (!allowed.includes(req.method ?? '')) throw new GatewayError('GW_METHOD_NOT_ALLOWED', undefined, { allow: allowed.join(', ') });
    const who = endpoint.secured ? authenticate(req, auth) : undefined;
    await endpoint.handle(req, res, who);
  }

  /** A server for one admin socket; its requests read the plane's credentials as they are at that moment. */
  function createPlane(admin: AdminConfig | undefined, auth: AdminAuth): Plane {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      handle(req, res, plane).catch((err: unknown) => {
        if (!(err instanceof GatewayError)) deps.logger.error({ event: LOG_EVENTS.ADMIN_REQUEST, path: req.url, err }, 'admin request failed');
        if (res.headersSent) return void res.destroy();
        const r = toHttpResponse(err, randomUUID());
        res.writeHead(r.status, r.headers).end(r.body);
      });
    };
    // Health probes and scrapers connect without a certificate; the secured endpoints check it themselves.
    const server = auth.tlsOptions ? createHttpsServer({ ...PLANE_LIMITS, ...auth.tlsOptions }, onRequest) : createHttpServer(PLANE_LIMITS, onRequest);
    server.maxConnections = ADMIN_MAX_CONNECTIONS;
    const plane: Plane = { server, address: admin?.address ?? DEFAULTS.adminAddress, port: admin?.port ?? DEFAULTS.adminPort, auth };
    return plane;
  }

  function bind(plane: Plane): Promise<{ port: number }> {
    const { server, address } = plane;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(plane.port, address, () => {
        server.off('error', reject);
        const port = (server.address() as { port: number }).port;
        deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: 'admin', address, port, tls: plane.auth.tls !== undefined, securedEndpoints: plane.auth.securedEnabled });
        resolve({ port });
      });
    });
  }

  let live = createPlane(config, compileAuth(config, deps.meshBundlePem, deps.meshRevoked));

  async function prepare(next: Config): Promise<PreparedChange> {
    let auth: AdminAuth;
    try {
      auth = compileAuth(next.admin, next.mesh ? readFileSync(next.mesh.bundle, 'utf8') : undefined, next.mesh?.revoked);
      // Parsed now, so the commit cannot fail on a key that does not match its certificate.
      if (auth.tlsOptions) createSecureContext(auth.tlsOptions);
    } catch (err) {
      throw new ReloadRefused('/admin', (err as Error).message);
    }
    const current = live;
    // A reload that races the start (a file changed at once) must not bind a second plane beside the first.
    if (!current.server.listening) throw new ReloadRefused('/admin', 'the admin plane is not listening yet');
    const address = next.admin?.address ?? DEFAULTS.adminAddress;
    const port = next.admin?.port ?? DEFAULTS.adminPort;
    const samePort = address === current.address && port === current.port;
    if (samePort && (auth.tls !== undefined) === (current.auth.tls !== undefined)) {
      return {
        commit() {
          current.auth = auth;
          if (auth.tlsOptions) (current.server as ReturnType<typeof createHttpsServer>).setSecureContext(auth.tlsOptions);
        },
        abort: async () => undefined,
      };
    }
    const plane = createPlane(next.admin, auth);
    try {
      await bind(plane);
    } catch (err) {
      const hint = samePort ? ' (turning admin TLS on or off on the same port needs a restart)' : '';
      throw new ReloadRefused('/admin/port', `admin plane: cannot listen on ${address}:${port}: ${(err as Error).message}${hint}`);
    }
    return {
      commit() {
        live = plane;
        void closePlane(current, RETIRE_GRACE_MS);
      },
      abort: () => closePlane(plane),
    };
  }

  return {
    listen: () => bind(live),
    prepare,
    close: () => closePlane(live),
  };
}

/** Stops accepting at once; idle connections close now, busy ones after their answer or at the grace's end. */
function closePlane(plane: Plane, graceMs = 0): Promise<void> {
  const { server } = plane;
  if (!server.listening) return Promise.resolve();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  if (graceMs === 0) server.closeAllConnections();
  else setTimeout(() => server.closeAllConnections(), graceMs).unref();
  return closed;
}

/** The admin token's digest; throws when the file holds no acceptable token (the config loader calls it too). */
export function readAdminToken(file: string): Buffer {
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < MIN_TOKEN_LENGTH) throw new Error(`admin.tokenFile: the token must be at least ${MIN_TOKEN_LENGTH} characters`);
  if (!BEARER.test(`Bearer ${token}`)) throw new Error('admin.tokenFile: the token must be a single RFC 6750 b64token (no spaces)');
  return digest(token);
}

/**
 * DNS rebinding: a page the operator visits points its own name at this plane, and the browser then reads what the
 * plane answers to that name. Such a page can only send its own name as Host, so the plane answers IP literals,
 * `localhost` and the name it binds to (Kubernetes probes and scrapers use the pod IP). Port, case and a trailing
 * dot are ignored; a request without Host (HTTP/1.0) names no origin a browser could have used.
 */
function hostAllowed(host: string | undefined, address: string): boolean {
  if (host === undefined) return true;
  const name = hostName(host);
  const ip = name.startsWith('[') ? isIP(name.slice(1, -1)) === 6 : isIP(name) === 4;
  return ip || name === 'localhost' || name === hostName(address);
}

/** `Example.COM.:9901` → `example.com`, `[::1]:9901` → `[::1]`; unbracketed colons are no valid Host and stay. */
function hostName(host: string): string {
  const lower = host.toLowerCase();
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(lower)?.[1] ?? lower;
  return name.replace(/\.$/, '');
}

/** Digests first, so timingSafeEqual compares equal lengths and the token's length does not leak. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function drainBody(req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        reject(new GatewayError('GW_BODY_TOO_LARGE', undefined, { connection: 'close' }));
      }
    });
    req.on('end', resolve);
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json', JSON.stringify(value), headers);
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
}
