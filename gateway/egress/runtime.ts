// Config time for the egress proxy: the `egress` section compiled once into a frozen runtime (identify, allowlist,
// address guard, origination, limits, audit, the listener's TLS). The request path only reads it; a reload builds a
// new one and the server swaps it in (gateway/egress/server.ts). Every input file (listener certificate, client CA,
// origination CA, the mesh SVID) is read here, at each build, so a rotated file is picked up by the next reload.
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { RevocationList } from '../../certs/verify.js';
import { DEFAULTS } from '../config/defaults.js';
import type { EgressConfig } from '../config/egress-schema.js';
import type { RateLimitConfig } from '../config/operations-schema.js';
import { clientCertTlsOptions } from '../core/client-cert-tls.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createDryRunReporter, type DryRunReporter } from '../core/dry-run.js';
import type { Metrics } from '../core/metrics.js';
import type { JwtAuthn } from '../jwt/verifier.js';
import { hashKey, rateLimitHeaders, type RateLimiter } from '../limits/rate-limiter.js';
import { canonicalHost } from '../core/net/host.js';
import { createAddressGuard, type AddressGuard, type LookupFn } from './stages/address-guard.js';
import { createAllowlist, type Allowlist } from './stages/allowlist.js';
import type { AuditTrail } from '../audit/trail.js';
import { createAudit, type Audit } from './stages/audit.js';
import type { Tracing } from '../core/tracing.js';
import type { ConnectFn, DialDeps } from './stages/dial.js';
import type { OriginationTls } from './forward-http.js';
import { createIdentify, createProxyTokenIdentify, type Identity } from './stages/identify.js';
import type { TunnelLimiter } from './tunnel.js';

/** The egress limit in the gateway's one rate limiter; `:` keeps it apart from every configurable limit name. */
export const NEW_CONNECTIONS_LIMIT = 'egress:new-connections';

/** What the gateway's shared rate limiter must count for this egress config (merged with `rateLimits`). */
export function egressRateLimits(config: EgressConfig | undefined): RateLimitConfig[] {
  const perSecond = config?.limits?.newConnectionsPerSecond;
  return perSecond === undefined ? [] : [{ name: NEW_CONNECTIONS_LIMIT, requestsPerSecond: perSecond }];
}

export interface EgressLimits {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  firstBytesTimeoutMs: number;
  maxBytesPerTunnel: number | undefined;
  maxTunnelsPerIdentity: number;
  maxTunnelsPerSource: number;
  shutdownGraceMs: number;
}

export interface Originate {
  port: number;
  tls: OriginationTls;
}

/** The parts of the listener a reload cannot change without re-binding the socket. */
export interface ListenerShape {
  address: string;
  port: number;
  tls: boolean;
  requireCertificate: boolean;
  maxHeaderBytes: number;
  headersTimeoutMs: number;
}

export interface EgressRuntime {
  readonly listener: ListenerShape;
  /** Server certificate and client CA of the TLS listener, for `createServer` and `setSecureContext`. */
  readonly tls: SecureContextOptions | undefined;
  readonly limits: Readonly<EgressLimits>;
  /** SVID first; then, for callers without one, the proxy token; then the source address; else anonymous. */
  identify(socket: Socket, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): Promise<Identity>;
  readonly allowlist: Allowlist;
  readonly guard: AddressGuard;
  /** Exact host → TLS origination for plain `http://` requests to port 80. */
  readonly originate: ReadonlyMap<string, Originate>;
  /** Undefined when the caller may open another upstream connection now, else the 429 (or fail-closed 503). */
  overConnectionRate(identity: Identity, source: string): Promise<GatewayError | undefined>;
  readonly tunnels: TunnelLimiter;
  readonly audit: Audit;
  /** Reports what a dry-run allow rule or byte budget would have refused. */
  readonly wouldDeny: DryRunReporter;
  /** The file `audit` writes to, so the next build can keep the sink. */
  readonly auditFile: string | undefined;
  readonly dial: DialDeps;
  readonly cutRevokedTunnels: boolean;
  /** The gateway's tracing as it is when an attempt ends (it follows reloads); none traced without it. */
  readonly tracing: (() => Tracing) | undefined;
  now(): number;
}

export interface EgressRuntimeDeps {
  logger: Logger;
  tracing?: () => Tracing;
  metrics?: Pick<Metrics, 'egress' | 'dryRunWouldDeny'>;
  /** The tamper-evident audit trail, when the config has one: every record goes to it too. */
  trail?: AuditTrail;
  /** Milliseconds clock for durations; default `performance.now`. */
  now?: () => number;
  /** Resolver seam; default the configured `resolver`, else the system's. */
  lookup?: LookupFn;
  /** TCP connect seam; default `net.connect`. */
  connect?: ConnectFn;
  /**
   * The gateway's SVID (presented for `mutual` origination) and the mesh trust bundle (default client CA), as PEM,
   * and `mesh.revoked` (refused client certificates).
   */
  mesh?: { certPem: string; keyPem: string; bundlePem: string; revoked?: RevocationList };
  /** The gateway's one JWT service, for `proxyAuthorization`. */
  jwt?: JwtAuthn;
  /** The gateway's one rate limiter, holding `egressRateLimits(config)`, for `limits.newConnectionsPerSecond`. */
  limiter?: RateLimiter;
  /** Open-connection counts; shared by every runtime of one server so a reload keeps them. */
  tunnels: TunnelLimiter;
  /** The audit sink of the runtime this one replaces: kept when the file is the same, so no record is split. */
  previous?: { auditFile: string | undefined; audit: Audit };
}

/** A `staticHosts` or `originate` host: an exact name, never a wildcard or an address. */
export function exactHost(where: string, pattern: string): string {
  const canonical = pattern.startsWith('*.') ? undefined : canonicalHost(pattern);
  if (canonical === undefined || canonical.isIp) throw new Error(`${where}: ${JSON.stringify(pattern)} must be an exact host name`);
  return canonical.host;
}

function resolveLimits(limits: EgressConfig['limits'] = {}): EgressLimits {
  const d = DEFAULTS.egressLimits;
  return {
    connectTimeoutMs: limits.connectTimeoutMs ?? d.connectTimeoutMs,
    idleTimeoutMs: limits.idleTimeoutMs ?? d.idleTimeoutMs,
    firstBytesTimeoutMs: limits.firstBytesTimeoutMs ?? d.firstBytesTimeoutMs,
    maxBytesPerTunnel: limits.maxBytesPerTunnel,
    maxTunnelsPerIdentity: limits.maxTunnelsPerIdentity ?? d.maxTunnelsPerIdentity,
    maxTunnelsPerSource: limits.maxTunnelsPerSource ?? d.maxTunnelsPerSource,
    shutdownGraceMs: limits.shutdownGraceMs ?? d.shutdownGraceMs,
  };
}

type EgressOriginate = NonNullable<EgressConfig['originate']>[number];

/** One `originate` entry as [host, how to originate]; throws on what the gateway cannot do (the loader calls it too). */
export function compileOriginate(o: EgressOriginate, mesh: { certPem: string; keyPem: string; revoked?: RevocationList } | undefined): [string, Originate] {
  const host = exactHost('egress.originate', o.host);
  if (o.tls.mutual && !mesh) throw new Error(`egress.originate[${o.host}]: mutual TLS needs the mesh SVID (mesh.svid)`);
  const tls: OriginationTls = {
    serverName: o.tls.serverName ?? host,
    ca: o.tls.ca !== undefined ? readFileSync(o.tls.ca) : undefined,
    cert: o.tls.mutual ? mesh?.certPem : undefined,
    key: o.tls.mutual ? mesh?.keyPem : undefined,
    revoked: mesh?.revoked,
  };
  return [host, { port: o.port ?? DEFAULTS.egressOriginatePort, tls }];
}

function listenerShape(config: EgressConfig): ListenerShape {
  const l = config.listener;
  return {
    address: l.address ?? DEFAULTS.egressListenerAddress,
    port: l.port,
    tls: l.tls !== undefined,
    requireCertificate: (l.tls?.clientAuth ?? DEFAULTS.egressClientAuth) === 'required',
    maxHeaderBytes: l.maxHeaderBytes ?? DEFAULTS.egressMaxHeaderBytes,
    headersTimeoutMs: l.headersTimeoutMs ?? DEFAULTS.egressHeadersTimeoutMs,
  };
}

function connectionRate(config: EgressConfig, limiter: RateLimiter | undefined): EgressRuntime['overConnectionRate'] {
  if (config.limits?.newConnectionsPerSecond === undefined) return async () => undefined;
  if (!limiter) throw new Error('egress.limits.newConnectionsPerSecond: needs the gateway rate limiter');
  return async (identity, source) => {
    // Anonymous callers are counted by source address, so one of them cannot use up everyone's budget. Hashed like
    // every limiter key: a principal is caller-influenced text of any length, never a raw Redis key.
    const key = hashKey('egress', identity.kind === 'anonymous' ? `anonymous@${source}` : identity.principal);
    try {
      const result = await limiter.check(NEW_CONNECTIONS_LIMIT, key);
      return result.allowed ? undefined : new GatewayError('GW_RATE_LIMITED', 'too_many_new_connections', rateLimitHeaders(result));
    } catch (err) {
      // A limit that fails closed while its store is down answers 503; anything else is a bug and propagates.
      if (err instanceof GatewayError) return err;
      throw err;
    }
  };
}

/** Compiles the egress section; throws with the config path on anything it cannot use. Reads files, writes none. */
export function buildEgressRuntime(config: EgressConfig, deps: EgressRuntimeDeps): EgressRuntime {
  const listener = listenerShape(config);
  const tls = config.listener.tls
    ? clientCertTlsOptions('egress.listener.tls', config.listener.tls, deps.mesh?.bundlePem, listener.requireCertificate)
    : undefined;
  const byCertificateOrSource = createIdentify({
    sourceIdentities: config.sourceIdentities ?? [],
    ...(deps.mesh?.revoked ? { revoked: deps.mesh.revoked } : {}),
  });
  let byToken: ReturnType<typeof createProxyTokenIdentify> | undefined;
  if (config.proxyAuthorization) {
    if (!deps.jwt) throw new Error('egress.proxyAuthorization: needs the gateway JWT providers');
    byToken = createProxyTokenIdentify(config.proxyAuthorization.providers, deps.jwt);
  }
  const limits = resolveLimits(config.limits);
  const dnsTimeoutMs = config.limits?.dnsTimeoutMs ?? DEFAULTS.egressLimits.dnsTimeoutMs;
  const staticHosts = new Map<string, readonly string[]>();
  for (const entry of config.staticHosts ?? []) staticHosts.set(exactHost('egress.staticHosts', entry.host), entry.addresses);
  const guard = createAddressGuard(
    {
      ...config.addressGuard,
      staticHosts,
      dnsTimeoutMs,
      resolver: config.resolver && { servers: config.resolver.servers, timeoutMs: config.resolver.timeoutMs ?? dnsTimeoutMs },
    },
    { lookup: deps.lookup },
  );
  const allowlist = createAllowlist({ allow: config.allow, deny: config.deny });
  const originate = new Map((config.originate ?? []).map((o) => compileOriginate(o, deps.mesh)));
  const overConnectionRate = connectionRate(config, deps.limiter);
  const auditFile = config.audit?.file;
  const audit =
    deps.previous && deps.previous.auditFile === auditFile
      ? deps.previous.audit
      : createAudit({ file: auditFile }, { logger: deps.logger, metrics: deps.metrics, trail: deps.trail });

  return Object.freeze({
    listener: Object.freeze(listener),
    tls,
    limits: Object.freeze(limits),
    async identify(socket: Socket, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): Promise<Identity> {
      const fromSocket = byCertificateOrSource(socket);
      if (fromSocket.kind === 'spiffe' || !byToken) return fromSocket;
      return (await byToken(headers, rawHeaders)) ?? fromSocket;
    },
    allowlist,
    guard,
    originate,
    overConnectionRate,
    tunnels: deps.tunnels,
    audit,
    wouldDeny: createDryRunReporter(deps),
    auditFile,
    tracing: deps.tracing,
    dial: { connect: deps.connect },
    cutRevokedTunnels: config.reload?.cutRevokedTunnels ?? false,
    now: deps.now ?? (() => performance.now()),
  });
}
