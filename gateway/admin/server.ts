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
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { spiffeIdFromCertificate } from '../../certs/spiffe-id.js';
import { DEFAULTS } from '../config/defaults.js';
import type { AdminConfig } from '../config/operations-schema.js';
import { clientCertTlsOptions } from '../core/client-cert-tls.js';
import { GatewayError, toHttpResponse } from '../core/errors.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
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
  /** Mesh trust bundle (PEM): the client CA when `admin.tls.clientCa` is unset. */
  meshBundlePem?: string;
  /** Each upstream's endpoints and their health; unset (404) where no single process knows them (several workers). */
  upstreams?(): unknown;
}

export interface AdminServer {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}


/** Log events of the admin plane. */

/** Short tokens can be guessed; 16 characters of a random token is already 80+ bits. */
const MIN_TOKEN_LENGTH = 16;
/** `/reload` takes no body; anything beyond a few bytes is not a reload request. */
const MAX_BODY_BYTES = 1024;
const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+) *$/;
/** RFC 6750 §3: a 401 names the scheme the client should use. */
const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="portcullis-admin"' };

interface Endpoint {
  method: 'GET' | 'POST';
  secured: boolean;
  handle(req: IncomingMessage, res: ServerResponse, who: string | undefined): Promise<void>;
}

export function createAdminServer(config: AdminConfig | undefined, deps: AdminServerDeps): AdminServer {
  const tokenDigest = config?.tokenFile !== undefined ? readAdminToken(config.tokenFile) : undefined;
  const tls = config?.tls;
  const allowedIds = new Set(tls?.allowedSpiffeIds ?? []);
  const securedEnabled = tokenDigest !== undefined || tls !== undefined;
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
    '/config': { method: 'GET', secured: true, handle: async (_req, res) => json(res, 200, redactConfig(await deps.config())) },
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
  function authenticate(req: IncomingMessage): string {
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
        if (id !== undefined && allowedIds.has(id)) return id;
        throw new GatewayError('GW_AUTHZ_DENIED', 'spiffe_id_not_allowed');
      }
    }
    throw new GatewayError('GW_AUTHN_INVALID_TOKEN', 'admin_credentials_required', tokenDigest !== undefined ? BEARER_CHALLENGE : undefined);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const endpoint = Object.hasOwn(endpoints, path) ? endpoints[path] : undefined;
    if (!endpoint || (endpoint.secured && !securedEnabled)) throw new GatewayError('GW_ROUTE_NOT_FOUND', endpoint ? 'admin_endpoint_disabled' : undefined);
    const allowed = endpoint.method === 'GET' ? ['GET', 'HEAD'] : [endpoint.method];
    // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
    if (!allowed.includes(req.method ?? '')) throw new GatewayError('GW_METHOD_NOT_ALLOWED', undefined, { allow: allowed.join(', ') });
    const who = endpoint.secured ? authenticate(req) : undefined;
    await endpoint.handle(req, res, who);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!(err instanceof GatewayError)) deps.logger.error({ event: LOG_EVENTS.ADMIN_REQUEST, path: req.url, err }, 'admin request failed');
      if (res.headersSent) return void res.destroy();
      const r = toHttpResponse(err, randomUUID());
      res.writeHead(r.status, r.headers).end(r.body);
    });
  };

  const serverOptions = { headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 8192 };
  let server: Server;
  if (tls) {
    server = createHttpsServer(
      // Health probes and scrapers connect without a certificate; the secured endpoints check it themselves.
      { ...serverOptions, ...clientCertTlsOptions('admin.tls', tls, deps.meshBundlePem, false) },
      onRequest,
    );
  } else {
    server = createHttpServer(serverOptions, onRequest);
  }

  return {
    listen() {
      const address = config?.address ?? DEFAULTS.adminAddress;
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config?.port ?? DEFAULTS.adminPort, address, () => {
          server.off('error', reject);
          const port = (server.address() as { port: number }).port;
          deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: 'admin', address, port, tls: tls !== undefined, securedEndpoints: securedEnabled });
          resolve({ port });
        });
      });
    },
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The admin token's digest; throws when the file holds no acceptable token (the config loader calls it too). */
export function readAdminToken(file: string): Buffer {
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < MIN_TOKEN_LENGTH) throw new Error(`admin.tokenFile: the token must be at least ${MIN_TOKEN_LENGTH} characters`);
  if (!BEARER.test(`Bearer ${token}`)) throw new Error('admin.tokenFile: the token must be a single RFC 6750 b64token (no spaces)');
  return digest(token);
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

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value));
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
}
