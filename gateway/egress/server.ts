// The egress gateway: a forward proxy for CONNECT tunnels and absolute-form HTTP, the one way out of the mesh.
// Every attempt runs the same stages in this order, each once:
//   identify (SVID, else source CIDR) → allowlist (host, port) → address guard (resolve once, classify)
//   → dial (the checked address) → [CONNECT: SNI check, then tunnel | HTTP: forward, maybe over TLS] → audit.
// A refusal at any stage answers at once with the gateway's error format and writes the audit record.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { DEFAULTS } from '../config/defaults.js';
import type { JwtProviderConfig } from '../config/schema.js';
import type { EgressConfig } from '../config/egress-schema.js';
import type { RedisConfig } from '../config/operations-schema.js';
import { clientCertTlsOptions } from '../core/client-cert-tls.js';
import { GatewayError, toHttpResponse, toRawHttpResponse } from '../core/errors.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { Tracing } from '../core/tracing.js';
import { createRateLimiter, rateLimitHeaders } from '../ingress/stages/rate-limit.js';
import { canonicalHost } from '../core/net/host.js';
import { formatAuthority, parseAuthority, type Destination } from './destination.js';
import { createAddressGuard, type LookupFn } from './stages/address-guard.js';
import { createAllowlist, type AllowlistDecision } from './stages/allowlist.js';
import type { AuditTrail } from '../audit/trail.js';
import { createAudit, type EgressRecord, type ProxyType } from './stages/audit.js';
import { connectTcp, forwardHttp, inspectFirstBytes, originateTls, type ConnectFn, type OriginationTls } from './stages/dial.js';
import { ANONYMOUS, createIdentify, createProxyTokenIdentify, PROXY_CHALLENGE, type Identity } from './stages/identify.js';
import { createTunnelLimiter, openTunnel } from './tunnel.js';

export interface EgressServerDeps {
  logger: Logger;
  /** Resolver seam; default `dns.promises.lookup(all)`. */
  lookup?: LookupFn;
  /** TCP connect seam; default `net.connect`. */
  connect?: ConnectFn;
  /** The gateway's SVID (presented for `mutual` origination) and the mesh trust bundle (default client CA), as PEM. */
  mesh?: { certPem: string; keyPem: string; bundlePem: string };
  metrics?: Pick<Metrics, 'egress'>;
  /** The tamper-evident audit trail, when the config has one. */
  trail?: AuditTrail;
  /** The config's JWT providers, for `proxyAuthorization`. */
  jwtProviders?: readonly JwtProviderConfig[];
  /** Milliseconds clock for durations; default `performance.now`. */
  now?: () => number;
  /** Where `limits.newConnectionsPerSecond` is counted across replicas; in memory without it. */
  redis?: RedisConfig;
  /** The tracing current when an attempt ends (it follows reloads); none traced without it. */
  tracing?: () => Tracing;
}

export interface EgressServer {
  listen(): Promise<{ port: number }>;
  /** Stops accepting, lets open tunnels finish up to `shutdownGraceMs`, cuts the rest, flushes the audit file. */
  close(): Promise<void>;
}

/** The one limit of the egress server's rate limiter. */
const NEW_CONNECTIONS = 'egress-new-connections';



type EgressOriginate = NonNullable<EgressConfig['originate']>[number];

interface Originate {
  port: number;
  tls: OriginationTls;
}

/** One `originate` entry as [host, how to originate]; throws on what the gateway cannot do (the loader calls it too). */
export function compileOriginate(o: EgressOriginate, mesh: { certPem: string; keyPem: string } | undefined): [string, Originate] {
  const host = exactHost('egress.originate', o.host);
  if (o.tls.mutual && !mesh) throw new Error(`egress.originate[${o.host}]: mutual TLS needs the mesh SVID (mesh.svid)`);
  const tls = {
    serverName: o.tls.serverName ?? host,
    ...(o.tls.ca !== undefined ? { ca: readFileSync(o.tls.ca) } : {}),
    ...(o.tls.mutual && mesh ? { cert: mesh.certPem, key: mesh.keyPem } : {}),
  };
  return [host, { port: o.port ?? DEFAULTS.egressOriginatePort, tls }];
}

/** A `staticHosts` or `originate` host: an exact name, never a wildcard or an address. */
export function exactHost(where: string, pattern: string): string {
  const canonical = pattern.startsWith('*.') ? undefined : canonicalHost(pattern);
  if (canonical === undefined || canonical.isIp) throw new Error(`${where}: ${JSON.stringify(pattern)} must be an exact host name`);
  return canonical.host;
}

export function createEgressServer(config: EgressConfig, deps: EgressServerDeps): EgressServer {
  const limits = { ...DEFAULTS.egressLimits, ...config.limits };
  const now = deps.now ?? (() => performance.now());
  const identify = createIdentify({ ...(config.sourceIdentities ? { sourceIdentities: config.sourceIdentities } : {}) });
  const proxyToken = config.proxyAuthorization
    ? createProxyTokenIdentify(
        config.proxyAuthorization.providers.map((name) => {
          const provider = deps.jwtProviders?.find((p) => p.name === name);
          if (!provider) throw new Error(`egress.proxyAuthorization: no JWT provider named ${name}`);
          return provider;
        }),
        { logger: deps.logger },
      )
    : undefined;
  /** SVID first; then, for callers without one, the proxy token; then the source address. */
  const identifyRequest = async (socket: Socket, req: IncomingMessage): Promise<Identity> => {
    const byCertificate = identify(socket);
    if (byCertificate.kind === 'spiffe' || !proxyToken) return byCertificate;
    return (await proxyToken.identify(req.headers, req.rawHeaders)) ?? byCertificate;
  };
  const allowlist = createAllowlist({ allow: config.allow, ...(config.deny ? { deny: config.deny } : {}) });
  const staticHosts = new Map<string, readonly string[]>();
  for (const entry of config.staticHosts ?? []) staticHosts.set(exactHost('egress.staticHosts', entry.host), entry.addresses);
  const guard = createAddressGuard(
    { ...config.addressGuard, staticHosts, dnsTimeoutMs: limits.dnsTimeoutMs },
    deps.lookup ? { lookup: deps.lookup } : {},
  );
  const originate = new Map((config.originate ?? []).map((o) => compileOriginate(o, deps.mesh)));
  const tunnels = createTunnelLimiter(limits.maxTunnelsPerIdentity);
  const connectionRate =
    limits.newConnectionsPerSecond === undefined
      ? undefined
      : createRateLimiter([{ name: NEW_CONNECTIONS, requestsPerSecond: limits.newConnectionsPerSecond }], deps.redis, { logger: deps.logger });
  /** Undefined when the identity may open another connection now, else the 429 to answer. */
  async function overConnectionRate(identity: Identity, socket: Socket): Promise<GatewayError | undefined> {
    if (!connectionRate) return undefined;
    // Anonymous callers are counted by source address, so one of them cannot use up everyone's budget.
    const key = identity.kind === 'anonymous' ? `anonymous@${socket.remoteAddress ?? ''}` : identity.principal;
    const result = await connectionRate.check(NEW_CONNECTIONS, key);
    return result.allowed ? undefined : new GatewayError('GW_RATE_LIMITED', 'too many new connections for this identity', rateLimitHeaders(result));
  }
  const audit = createAudit(config.audit?.file ? { file: config.audit.file } : {}, {
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.trail ? { trail: deps.trail } : {}),
  });
  const dialDeps = deps.connect ? { connect: deps.connect } : {};
  /** One audit record, and one span, per attempt. */
  const record = (req: IncomingMessage, r: EgressRecord): void => audit.record(deps.tracing ? deps.tracing().egress(req, r) : r);

  const serverOptions = {
    maxHeaderSize: config.listener.maxHeaderBytes ?? DEFAULTS.egressMaxHeaderBytes,
    headersTimeout: config.listener.headersTimeoutMs ?? DEFAULTS.egressHeadersTimeoutMs,
  };
  let server: Server;
  const tls = config.listener.tls;
  if (tls) {
    const required = (tls.clientAuth ?? DEFAULTS.egressClientAuth) === 'required';
    server = createHttpsServer({ ...serverOptions, ...clientCertTlsOptions('egress.listener.tls', tls, deps.mesh?.bundlePem, required) });
  } else {
    server = createHttpServer(serverOptions);
  }

  let closing = false;
  /** In-flight attempts, so shutdown can wait for them and cut what outlives the grace period. */
  const active = new Map<Promise<void>, () => void>();
  const track = (run: (setCut: (cut: () => void) => void) => Promise<void>): void => {
    let cut: () => void = () => undefined;
    const done: Promise<void> = run((c) => {
      cut = c;
    })
      .catch((err: unknown) => deps.logger.error({ event: LOG_EVENTS.EGRESS_DECISION, err }, 'egress handler failed'))
      .finally(() => active.delete(done));
    active.set(done, () => cut());
  };

  function baseRecord(id: string, identity: Identity, proxyType: ProxyType, socket: Socket, dest: Destination | undefined, started: number) {
    return {
      id,
      identity: identity.principal,
      identityKind: identity.kind,
      proxyType,
      inboundRemoteAddr: socket.remoteAddress,
      host: dest?.host,
      port: dest?.port,
      durationMs: () => Math.round(now() - started),
    };
  }

  /** The refusal a policy decision turns into: 407 when the caller could fix it by authenticating. */
  function policyError(identity: Identity, decision: AllowlistDecision): GatewayError {
    if (identity.kind === 'anonymous' && decision.reason === 'no_rule_matched') {
      return new GatewayError('GW_EGRESS_NO_IDENTITY', 'no identity', PROXY_CHALLENGE);
    }
    return new GatewayError('GW_EGRESS_DENIED', decision.reason);
  }

  function refusalRecord(base: ReturnType<typeof baseRecord>, err: GatewayError, extra: Partial<EgressRecord> = {}): EgressRecord {
    const { durationMs, ...rest } = base;
    // GW_UPSTREAM_* only arise after the policy allowed the attempt: it was allowed, and then the upstream failed.
    const allow = err.code.startsWith('GW_UPSTREAM_');
    return { ...rest, allow, reason: err.reason ?? err.code, code: err.code, durationMs: durationMs(), ...extra };
  }

  function writeRawResponse(socket: Socket, err: GatewayError, id: string): void {
    socket.end(toRawHttpResponse(err, id));
  }

  function writeResponse(res: ServerResponse, err: GatewayError, id: string): void {
    const r = toHttpResponse(err, id);
    res.writeHead(r.status, r.headers).end(r.body);
  }

  async function handleConnect(req: IncomingMessage, socket: Socket, head: Buffer, setCut: (cut: () => void) => void): Promise<void> {
    const started = now();
    const id = randomUUID();
    socket.on('error', () => undefined);
    setCut(() => socket.destroy());
    let identity = ANONYMOUS;
    let dest: Destination | undefined;
    const refuse = (err: GatewayError, extra?: Partial<EgressRecord>): void => {
      writeRawResponse(socket, err, id);
      record(req, refusalRecord(baseRecord(id, identity, 'connect', socket, dest, started), err, extra));
    };
    if (closing) return refuse(new GatewayError('GW_UNAVAILABLE', 'shutting down'));
    if (audit.refusing()) return refuse(new GatewayError('GW_UNAVAILABLE', 'audit_unavailable'));
    try {
      identity = await identifyRequest(socket, req);
    } catch (err) {
      return refuse(err as GatewayError);
    }
    try {
      dest = parseAuthority(req.url ?? '');
    } catch (err) {
      return refuse(err as GatewayError);
    }
    const decision = allowlist(identity, dest);
    const ruleFields = { ...(decision.rule ? { rule: decision.rule } : {}), wouldDeny: decision.wouldDeny };
    if (!decision.allowed) return refuse(policyError(identity, decision), ruleFields);
    const overRate = await overConnectionRate(identity, socket);
    if (overRate) return refuse(overRate, ruleFields);
    const releaseSlot = tunnels.acquire(identity.principal);
    if (!releaseSlot) return refuse(new GatewayError('GW_RATE_LIMITED', 'too many tunnels for this identity'), ruleFields);
    try {
      const resolved = await guard.resolve(dest);
      if (!resolved.allowed) {
        return refuse(resolved.error, { ...ruleFields, ...(resolved.address ? { address: resolved.address } : {}) });
      }
      const address = { address: resolved.address };
      let upstream: Socket;
      try {
        upstream = await connectTcp({ address: resolved.address, family: resolved.family, port: dest.port }, limits.connectTimeoutMs, dialDeps);
      } catch (err) {
        return refuse(err as GatewayError, { ...ruleFields, ...address });
      }
      if (socket.destroyed) {
        upstream.destroy();
        return refuse(new GatewayError('GW_REQUEST_MALFORMED', 'client went away'), { ...ruleFields, ...address });
      }
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const tunnel = openTunnel(socket, upstream, {
        idleTimeoutMs: limits.idleTimeoutMs,
        ...(limits.maxBytesPerTunnel !== undefined ? { maxBytes: limits.maxBytesPerTunnel } : {}),
      });
      setCut(() => tunnel.cut('shutdown'));
      const verdict = await inspectFirstBytes(socket, dest, head, limits.firstBytesTimeoutMs);
      if (verdict.ok) tunnel.release(verdict.head);
      else tunnel.cut(verdict.end);
      const stats = await tunnel.done;
      const sni = verdict.sni !== undefined ? { sni: verdict.sni } : {};
      const { durationMs, ...rest } = baseRecord(id, identity, 'connect', socket, dest, started);
      const fronting = stats.end === 'sni_mismatch';
      record(req, {
        ...rest,
        ...ruleFields,
        ...address,
        ...sni,
        allow: !fronting,
        reason: fronting ? 'sni_mismatch' : decision.reason,
        end: stats.end,
        bytesUp: stats.bytesUp,
        bytesDown: stats.bytesDown,
        durationMs: durationMs(),
        ...(fronting || stats.end === 'byte_budget_exceeded' ? { alert: true } : {}),
      });
    } finally {
      releaseSlot();
    }
  }

  /** Absolute-form `http://authority/path`: the raw authority is parsed by our own rules, not by `new URL`. */
  function splitAbsoluteForm(url: string): { authority: string; path: string } {
    const match = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
    if (!match || match[1]!.includes('@')) throw new GatewayError('GW_REQUEST_MALFORMED', 'expected absolute-form http:// request target');
    const rest = match[2]!;
    return { authority: match[1]!, path: rest.startsWith('/') ? rest : `/${rest}` };
  }

  async function handleRequest(req: IncomingMessage, res: ServerResponse, setCut: (cut: () => void) => void): Promise<void> {
    const started = now();
    const id = randomUUID();
    const socket = req.socket;
    setCut(() => res.destroy());
    let identity = ANONYMOUS;
    let dest: Destination | undefined;
    let proxyType: ProxyType = 'http';
    const refuse = (err: GatewayError, extra?: Partial<EgressRecord>): void => {
      if (!res.headersSent) writeResponse(res, err, id);
      record(req, refusalRecord(baseRecord(id, identity, proxyType, socket, dest, started), err, extra));
    };
    if (closing) return refuse(new GatewayError('GW_UNAVAILABLE', 'shutting down'));
    if (audit.refusing()) return refuse(new GatewayError('GW_UNAVAILABLE', 'audit_unavailable'));
    try {
      identity = await identifyRequest(socket, req);
    } catch (err) {
      return refuse(err as GatewayError);
    }
    let path: string;
    try {
      const target = splitAbsoluteForm(req.url ?? '');
      path = target.path;
      dest = parseAuthority(target.authority, 80);
      const host = req.headers.host;
      // RFC 9112 §3.2.2: a proxy must use the target URI's authority; a Host naming another one is an attempt to
      // get one destination checked and another served (the same split domain fronting exploits).
      const hostDest = host === undefined ? undefined : parseAuthority(host, 80);
      if (hostDest?.host !== dest.host || hostDest.port !== dest.port) {
        throw new GatewayError('GW_REQUEST_MALFORMED', 'host header does not match the request target');
      }
    } catch (err) {
      return refuse(err instanceof GatewayError ? err : new GatewayError('GW_REQUEST_MALFORMED'));
    }
    const origination = dest.port === 80 ? originate.get(dest.host) : undefined;
    if (origination) proxyType = 'originate';
    const leaving: Destination = origination ? { ...dest, port: origination.port } : dest;
    const decision = allowlist(identity, leaving);
    const ruleFields = { ...(decision.rule ? { rule: decision.rule } : {}), wouldDeny: decision.wouldDeny };
    if (!decision.allowed) return refuse(policyError(identity, decision), ruleFields);
    const overRate = await overConnectionRate(identity, socket);
    if (overRate) return refuse(overRate, ruleFields);
    const resolved = await guard.resolve(leaving);
    if (!resolved.allowed) return refuse(resolved.error, { ...ruleFields, ...(resolved.address ? { address: resolved.address } : {}) });
    const address = { address: resolved.address };
    let upstream: Socket;
    try {
      upstream = await connectTcp({ address: resolved.address, family: resolved.family, port: leaving.port }, limits.connectTimeoutMs, dialDeps);
      if (origination) upstream = await originateTls(upstream, origination.tls, limits.connectTimeoutMs);
    } catch (err) {
      return refuse(err as GatewayError, { ...ruleFields, ...address });
    }
    const defaultPort = origination ? 443 : 80;
    const hostHeader = leaving.port === defaultPort ? formatAuthority(leaving).replace(/:\d+$/, '') : formatAuthority(leaving);
    const result = await forwardHttp(req, res, upstream, { path, hostHeader }, limits.idleTimeoutMs);
    if (result.error) return refuse(result.error, { ...ruleFields, ...address, bytesUp: result.bytesUp, bytesDown: result.bytesDown });
    const { durationMs, ...rest } = baseRecord(id, identity, proxyType, socket, leaving, started);
    record(req, {
      ...rest,
      ...ruleFields,
      ...address,
      ...(origination ? { sni: origination.tls.serverName } : {}),
      allow: true,
      reason: decision.reason,
      ...(result.status !== undefined ? { status: result.status } : {}),
      bytesUp: result.bytesUp,
      bytesDown: result.bytesDown,
      durationMs: durationMs(),
    });
  }

  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
    track((setCut) => handleConnect(req, socket, head, setCut)),
  );
  server.on('request', (req: IncomingMessage, res: ServerResponse) => track((setCut) => handleRequest(req, res, setCut)));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'GW_HEADERS_TOO_LARGE' : 'GW_REQUEST_MALFORMED';
    writeRawResponse(socket, new GatewayError(code), randomUUID());
  });

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listener.port, config.listener.address ?? DEFAULTS.egressListenerAddress, () => {
          server.off('error', reject);
          const addr = server.address();
          const port = typeof addr === 'object' && addr ? addr.port : config.listener.port;
          deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: 'egress', port }, 'egress gateway listening');
          resolve({ port });
        });
      });
    },
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, limits.shutdownGraceMs).unref());
      await Promise.race([Promise.allSettled([...active.keys()]), grace]);
      for (const cut of active.values()) cut();
      await Promise.allSettled([...active.keys()]);
      server.closeAllConnections();
      await stopped;
      proxyToken?.close();
      await Promise.all([audit.close(), connectionRate?.close()]);
      deps.logger.info({ event: LOG_EVENTS.SHUTDOWN, listener: 'egress' }, 'egress gateway stopped');
    },
  };
}
