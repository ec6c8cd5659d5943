// Config time: everything the request path reads is compiled here once into an immutable runtime
// (STYLE lesson 3): host indexes, TLS servers, routes, policies, JWT verifiers, upstream pools. A reload
// builds a whole new runtime and swaps one reference; requests keep the runtime they started with.
import { randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import type http2 from 'node:http2';
import { parseSpiffeId } from '../../certs/spiffe-id.js';
import { createSpiffePeerVerifier, type RevocationList, type SpiffePeerVerifier } from '../../certs/verify.js';
import { compilePolicies, type CompiledPolicySet } from '../../policies/compile.js';
import { certificateList, policyTargets, type Config, type ListenerConfig, type UpstreamConfig, type VirtualHostConfig } from '../config/schema.js';
import { DEFAULTS } from '../config/defaults.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { createDryRunReporter, type DryRunReporter } from '../core/dry-run.js';
import type { Metrics, UpstreamEndpointState } from '../core/metrics.js';
import type { RequestSeries } from '../core/request-metrics.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { ConnectionTarget, PassthroughAuthorizer } from './listener.js';
import { createAuthzStage, type AuthzStage, type ConnectionCheck } from './stages/authz.js';
import { createJwtAuthn, type JwtAuthn } from '../jwt/verifier.js';
import { createForwardedStage, type ForwardedStage } from './stages/forwarded.js';
import { createPathStage, type PathStage } from './stages/normalize-path.js';
import { compileRoute, createRouteTable, type RouteTable } from './stages/route.js';
import type { Tracing } from '../core/tracing.js';
import { createHeaderSanitizer, type HeaderSanitizer } from './stages/sanitize-headers.js';
import { createHostIndex, type HostIndex } from './tls/host-index.js';
import { loadMeshTrust, type MeshTrust } from './tls/mesh-trust.js';
import { createTerminatingServer, refuseUpgrade, type RequestHandler, type ClientAuth } from './tls/terminate.js';
import { createUpstreamClient, type BalancedOptions, type EndpointStatus, type UpstreamClient, type UpstreamClientOptions, type UpstreamTls } from './upstream/clients.js';
import type { EndpointEvents } from './upstream/endpoints.js';
import { createMirrorSender, type MirrorSender } from './upstream/mirror.js';

export interface VirtualHost {
  readonly name: string;
  readonly listener: string;
  readonly port: number;
  readonly clientAuth: ClientAuth;
  readonly target: ConnectionTarget;
}

export interface ListenerRuntime {
  readonly name: string;
  readonly port: number;
  /** SNI and Host → virtual host of this listener. */
  readonly hosts: HostIndex<VirtualHost>;
  /** The virtual host a TLS connection goes to: the one its SNI names, or `defaultHost` when it sent none. */
  hostForSni(sni: string | undefined): VirtualHost | undefined;
  /** Header fields a request may carry (HTTP/2 enforces it in nghttp2; HTTP/1.1 in the pipeline). */
  readonly maxHeaders: number;
  /** Bytes of header fields a request may carry (HTTP/1.1 enforces it in llhttp; HTTP/2 in the pipeline). */
  readonly maxHeaderBytes: number;
  /** Bounds on a request's life once the pipeline has it (see docs/operations.md, Timeouts). */
  readonly timeouts: { readonly requestMs: number; readonly bodyIdleMs: number; readonly writeIdleMs: number };
}

export interface IngressRuntime {
  readonly config: Config;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly paths: PathStage;
  readonly routes: RouteTable;
  readonly upstreams: ReadonlyMap<string, UpstreamClient>;
  /** Each HTTP upstream's request series, looked up once per request that is sent (empty without metrics). */
  readonly upstreamSeries: ReadonlyMap<string, RequestSeries>;
  /** Sends a route's mirrored copy (fire and forget). */
  readonly mirror: MirrorSender;
  readonly jwt: JwtAuthn;
  readonly authz: AuthzStage;
  /** Reports what an enforcement point in dry-run (a JWT provider, a route's token requirement) would have refused. */
  readonly wouldDeny: DryRunReporter;
  /** The compiled policies the authz stage asks (also read by `portcullis explain`). */
  readonly policies: CompiledPolicySet;
  readonly sanitizer: HeaderSanitizer;
  readonly forwarded: ForwardedStage;
  readonly terminatingServers: readonly http2.Http2SecureServer[];
  readonly rateLimiter: RateLimiter;
  readonly tracing: Tracing;
  /** The gateway's own certificates (listener certificates, SVID), for readiness and expiry metrics. */
  readonly certificates: readonly { name: string; notAfter: Date }[];
  /** Upstream pools by everything they were built from, for the runtime that replaces this one. */
  readonly pools: ReadonlyMap<string, UpstreamClient>;
  /**
   * Releases pools and JWKS fetches once no request uses this runtime any more, except those `other` took over
   * (`other` is the runtime that replaced this one, or the one a refused reload built from this one).
   */
  close(other?: IngressRuntime): Promise<void>;
  /** Cuts the pools with whatever still runs on them (the end of a shutdown drain). */
  destroy(): Promise<void>;
}

export interface RuntimeDeps {
  logger: Logger;
  /** The pipeline entry: bound per virtual host so a request knows which host its TLS session was for. */
  handlerFor(vhost: VirtualHost): RequestHandler;
  /** Session-ticket keys survive reloads so resumption keeps working across them. */
  ticketKeys: Buffer;
  fetch?: typeof globalThis.fetch;
  /** Lives across reloads (its counts must survive them); owned by the caller. */
  rateLimiter: RateLimiter;
  /** Shared with the previous runtime when `tracing` did not change; shut down by the last runtime that uses it. */
  tracing: Tracing;
  metrics?: Metrics;
  /** The runtime being replaced: its upstream pools and remote JWKS that did not change are taken over. */
  previous?: IngressRuntime;
}

export function newTicketKeys(): Buffer {
  return randomBytes(48);
}

const readPem = (file: string) => fs.readFileSync(file, 'utf8');

export function buildRuntime(config: Config, deps: RuntimeDeps): IngressRuntime {
  const upstreams = new Map(config.upstreams.map((u) => [u.name, u]));
  const trust = config.mesh ? loadMeshTrust(config.mesh) : undefined;
  const terminatingServers: http2.Http2SecureServer[] = [];
  const listeners = new Map<string, ListenerRuntime>();
  const policies = compilePolicies(config.policies ?? [], policyTargets(config));
  const authz = createAuthzStage(policies, { logger: deps.logger, ...(deps.metrics ? { metrics: deps.metrics } : {}) });
  for (const listener of config.listeners) {
    const vhosts = listener.hosts.map((host) => {
      const vhost = compileVirtualHost(config, listener, host, upstreams, trust, authz, deps);
      if (vhost.target.kind === 'terminate') terminatingServers.push(vhost.target.server as http2.Http2SecureServer);
      return vhost;
    });
    const hosts = createHostIndex(listener.hosts.map((h, i) => ({ hostnames: h.hostnames, value: vhosts[i]! })));
    const defaultHost = defaultHostOf(listener, vhosts);
    listeners.set(listener.name, {
      name: listener.name,
      port: listener.port,
      hosts,
      hostForSni: (sni) => (sni ? hosts.lookup(sni) : defaultHost),
      maxHeaders: listener.limits?.maxHeaders ?? DEFAULTS.maxHeaders,
      maxHeaderBytes: listener.limits?.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
      timeouts: Object.freeze({
        requestMs: listener.timeouts?.requestMs ?? DEFAULTS.requestTimeoutMs,
        bodyIdleMs: listener.timeouts?.bodyIdleMs ?? DEFAULTS.bodyIdleTimeoutMs,
        writeIdleMs: listener.timeouts?.writeIdleMs ?? DEFAULTS.writeIdleTimeoutMs,
      }),
    });
  }
  const jwt = createJwtAuthn(config.jwtProviders ?? [], config.jwtCache ? { tokenCacheSize: config.jwtCache.maxEntries } : {}, {
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.previous ? { previous: deps.previous.jwt } : {}),
  });
  // A route's timeout defaults to its upstream's.
  const timeouts = new Map(config.upstreams.map((u) => [u.name, u.timeoutMs ?? DEFAULTS.upstreamTimeoutMs]));
  const routeDefaults = {
    maxBodyBytes: DEFAULTS.routeMaxBodyBytes,
    pathCase: config.pathCase,
    upstreamTimeoutMs: (name: string) => timeouts.get(name) ?? DEFAULTS.upstreamTimeoutMs,
  };
  const hooks = upstreamHooks(deps);
  const pools = new Map<string, UpstreamClient>();
  const clients = new Map<string, UpstreamClient>();
  const upstreamSeries = new Map<string, RequestSeries>();
  for (const u of config.upstreams) {
    if (u.url.startsWith('tcp:')) continue;
    if (deps.metrics) upstreamSeries.set(u.name, deps.metrics.upstream(u.name));
    const options = upstreamClientOptions(config, u, trust, hooks);
    const key = poolKey(options, u, config);
    const client = deps.previous?.pools.get(key) ?? createUpstreamClient(options);
    pools.set(key, client);
    clients.set(u.name, client);
  }
  return {
    config,
    listeners,
    paths: createPathStage(config.routes),
    routes: createRouteTable(config.routes.map((r) => compileRoute(r, routeDefaults))),
    upstreams: clients,
    upstreamSeries,
    mirror: createMirrorSender(clients, routeDefaults.upstreamTimeoutMs, (route, outcome) => deps.metrics?.routeMirror(route, outcome)),
    jwt,
    authz,
    wouldDeny: createDryRunReporter(deps),
    policies,
    rateLimiter: deps.rateLimiter,
    tracing: deps.tracing,
    certificates: ownCertificates(config),
    sanitizer: createHeaderSanitizer(jwt.managedHeaders),
    forwarded: createForwardedStage(config.trustedProxies ?? []),
    terminatingServers,
    pools,
    async destroy() {
      jwt.close();
      await Promise.all([...pools.values()].map((c) => c.destroy()));
    },
    async close(other) {
      jwt.close(other?.jwt);
      const kept = new Set(other?.pools.values());
      await Promise.all([
        ...[...pools.values()].filter((c) => !kept.has(c)).map((c) => c.close()),
        other?.tracing === deps.tracing ? undefined : deps.tracing.shutdown(),
      ]);
    },
  };
}

const NO_HEADER = (): undefined => undefined;

/** A passthrough connection as policies see it: its addresses, the listener port and the SNI as `host`, no request. */
function connectionAuthorizer(check: ConnectionCheck, listenerPort: number): PassthroughAuthorizer {
  return (sourceIp, sni, localPort, id) =>
    check({ host: sni, method: '', path: '', port: listenerPort || localPort, sni, sourceIp, remoteIp: sourceIp, header: NO_HEADER }, id);
}

function defaultHostOf(listener: ListenerConfig, vhosts: readonly VirtualHost[]): VirtualHost | undefined {
  if (listener.defaultHost === undefined) return undefined;
  const vhost = vhosts.find((v) => v.name === listener.defaultHost);
  if (!vhost) throw new Error(`listener ${listener.name}: defaultHost "${listener.defaultHost}" is not one of its virtual hosts`);
  return vhost;
}

/**
 * Everything an upstream pool was built from, so an unchanged upstream keeps its open connections across a reload:
 * the options with the PEM contents (a rotated SVID or CA means a new pool) and what its SPIFFE verifier checks.
 */
function poolKey(options: ReturnType<typeof upstreamClientOptions>, upstream: UpstreamConfig, config: Config): string {
  const { verify: _verify, revoked: _revoked, ...tls } = options.tls ?? {};
  return JSON.stringify({
    ...options,
    origin: options.origin.href,
    tls,
    spiffeId: upstream.tls?.spiffeId,
    mesh: config.mesh ? { trustDomain: config.mesh.trustDomain, revoked: config.mesh.revoked } : undefined,
  });
}

function compileVirtualHost(
  config: Config,
  listener: ListenerConfig,
  host: VirtualHostConfig,
  upstreams: ReadonlyMap<string, UpstreamConfig>,
  trust: MeshTrust | undefined,
  authz: AuthzStage,
  deps: RuntimeDeps,
): VirtualHost {
  const base = { name: host.name, listener: listener.name, port: listener.port };
  if (host.tls.mode === 'passthrough') {
    const upstream = new URL(upstreams.get(host.tls.upstream)!.url);
    const connectTimeoutMs = upstreams.get(host.tls.upstream)!.connectTimeoutMs ?? DEFAULTS.upstreamConnectTimeoutMs;
    const check = authz.connectionCheck(host.name);
    return {
      ...base,
      clientAuth: 'none',
      target: {
        kind: 'passthrough',
        vhost: host.name,
        host: upstream.hostname,
        port: Number(upstream.port),
        connectTimeoutMs,
        ...(check ? { authorize: connectionAuthorizer(check, listener.port) } : {}),
      },
    };
  }
  const clientAuth = host.tls.clientAuth ?? DEFAULTS.clientAuth;
  // An explicit clientCa is a plain CA (no SPIFFE rules, only `mesh.revoked`); otherwise the mesh bundles and their rules apply.
  const clientCaPem = host.tls.clientCa ? readPem(host.tls.clientCa) : trust?.caPem;
  const server = createTerminatingServer({
    host: host.name,
    certificates: servingCertificates(host.name, certificateList(host.tls.certificate)),
    ciphers: listener.tls?.ciphers ?? DEFAULTS.tls12Ciphers,
    curves: listener.tls?.curves ?? DEFAULTS.tlsCurves,
    clientAuth,
    ...(clientAuth !== 'none' && clientCaPem ? { clientCaPem } : {}),
    ...(trust ? (host.tls.clientCa ? { revoked: trust.revoked } : { verifyPeer: trust.verifier() }) : {}),
    onPeerRefused: (reason, socket) => {
      deps.logger.info({ event: LOG_EVENTS.TLS_REFUSED, listener: listener.name, vhost: host.name, reason, peer: socket.remoteAddress });
      deps.metrics?.tlsHandshakeFailure(listener.name, reason.toLowerCase());
    },
    onHandshakeFailed: (reason) => deps.metrics?.tlsHandshakeFailure(listener.name, reason),
    minVersion: host.tls.minVersion ?? DEFAULTS.tlsMinVersion,
    handshakeTimeoutMs: listener.timeouts?.handshakeMs ?? DEFAULTS.handshakeTimeoutMs,
    headersTimeoutMs: listener.timeouts?.headersMs ?? DEFAULTS.headersTimeoutMs,
    idleTimeoutMs: listener.timeouts?.idleMs ?? DEFAULTS.idleTimeoutMs,
    maxHeaderBytes: listener.limits?.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    maxHeaders: listener.limits?.maxHeaders ?? DEFAULTS.maxHeaders,
    maxConcurrentStreams: listener.limits?.maxConcurrentStreams ?? DEFAULTS.maxConcurrentStreams,
    maxStreamResetsPerSecond: listener.limits?.maxStreamResetsPerSecond ?? DEFAULTS.maxStreamResetsPerSecond,
    ticketKeys: deps.ticketKeys,
  });
  const vhost: VirtualHost = { ...base, clientAuth, target: { kind: 'terminate', vhost: host.name, server } };
  const handler = deps.handlerFor(vhost);
  server.on('request', handler);
  // Listened to, so upgrade requests never reach 'request' as ordinary ones: WebSocket where a route allows it, else 400.
  server.on('upgrade', handler.upgrade ?? refuseUpgrade);
  return vhost;
}

/** Each HTTP upstream's endpoints and their health (the admin plane's `GET /upstreams`). */
export function upstreamStatus(rt: IngressRuntime): { name: string; endpoints: EndpointStatus[] }[] {
  return [...rt.upstreams.values()].map((c) => ({ name: c.name, endpoints: c.endpoints() }));
}

/** The same, flat, for the endpoint gauges. */
export function upstreamEndpointStates(rt: IngressRuntime): UpstreamEndpointState[] {
  return [...rt.upstreams.values()].flatMap((c) =>
    c.endpoints().map((e) => ({ upstream: c.name, endpoint: e.address, healthy: e.healthy && e.ejectedUntil === undefined, active: e.active })),
  );
}

/** What an upstream's clients report back: refusals and ejections (metrics, log). */
export type UpstreamHooks = (upstream: string) => Pick<UpstreamClientOptions, 'onOverloaded' | 'onRetry'> & { events?: EndpointEvents };

function upstreamHooks(deps: RuntimeDeps): UpstreamHooks {
  return (upstream) => ({
    onOverloaded: (reason) => deps.metrics?.upstreamOverloaded(upstream, reason),
    onRetry: (outcome) => deps.metrics?.upstreamRetry(upstream, outcome),
    events: {
      ejected: (endpoint) => {
        deps.metrics?.upstreamEjection(upstream, endpoint.address);
        deps.logger.warn({ event: LOG_EVENTS.UPSTREAM_EJECTED, upstream, endpoint: endpoint.address, ejectedForMs: endpoint.ejectedUntil - Date.now() });
      },
      resolveFailed: (err) => deps.logger.warn({ event: LOG_EVENTS.UPSTREAM_DNS_FAILED, upstream, error: String(err) }),
    },
  });
}

/**
 * Reads a host's certificates; two of one key type are refused, because OpenSSL would silently keep only the last
 * (it holds one certificate per key type and picks among types by the client's signature algorithms). The config
 * loader calls it too.
 */
export function servingCertificates(vhost: string, files: readonly { cert: string; key: string }[]): { certPem: string; keyPem: string }[] {
  const seen = new Set<string>();
  return files.map(({ cert, key }) => {
    const certPem = readPem(cert);
    const type = new X509Certificate(certPem).publicKey.asymmetricKeyType ?? 'unknown';
    if (seen.has(type)) throw new Error(`virtual host ${vhost}: two certificates with ${type} keys; give one per key type (e.g. one RSA, one ECDSA)`);
    seen.add(type);
    return { certPem, keyPem: readPem(key) };
  });
}

/** What an upstream's pool is built from; throws when its TLS cannot be set up (the config loader calls it too). */
export function upstreamClientOptions(config: Config, upstream: UpstreamConfig, trust: MeshTrust | undefined, hooks?: UpstreamHooks): UpstreamClientOptions {
  // The URL names the scheme and whom TLS must find; `endpoints` or `dns`, when set, say where to dial.
  const identity = new URL(upstream.url);
  const { endpoints, dns } = upstream;
  const balanced = dns !== undefined || (endpoints?.length ?? 1) > 1 || upstream.healthCheck !== undefined || upstream.outlierDetection !== undefined;
  const origin = endpoints?.length === 1 && !balanced ? new URL(`${identity.protocol}//${endpoints[0]!.address}`) : identity;
  const { events, ...callbacks } = hooks?.(upstream.name) ?? {};
  return {
    name: upstream.name,
    origin,
    protocol: upstream.protocol ?? DEFAULTS.upstreamProtocol,
    connections: upstream.connections ?? DEFAULTS.upstreamConnections,
    maxPendingRequests: upstream.maxPendingRequests ?? DEFAULTS.upstreamMaxPendingRequests,
    connectTimeoutMs: upstream.connectTimeoutMs ?? DEFAULTS.upstreamConnectTimeoutMs,
    ...(upstream.maxRequests !== undefined ? { maxRequests: upstream.maxRequests } : {}),
    ...(identity.protocol === 'https:' ? { tls: upstreamTls(config, upstream, identity, trust) } : {}),
    ...(balanced ? { balanced: balancedOptions(upstream, identity, events) } : {}),
    ...(upstream.maxRetries !== undefined ? { maxRetries: upstream.maxRetries } : {}),
    ...callbacks,
  };
}

function balancedOptions(upstream: UpstreamConfig, identity: URL, events: EndpointEvents | undefined): BalancedOptions {
  const { loadBalancer: lb, healthCheck: hc, outlierDetection: od, dns } = upstream;
  const endpoints = dns ? undefined : (upstream.endpoints ?? [{ address: identity.host }]);
  return {
    ...(endpoints ? { static: endpoints.map((e) => ({ address: withPort(e.address, identity), weight: e.weight ?? 1 })) } : {}),
    ...(dns
      ? {
          dns: {
            name: dns.name,
            port: dns.port,
            refreshMs: (dns.refreshSeconds ?? DEFAULTS.dnsRefreshSeconds) * 1000,
            allowLoopback: dns.allowLoopback ?? false,
          },
        }
      : {}),
    policy: lb?.policy ?? DEFAULTS.loadBalancerPolicy,
    panicThresholdPercent: lb?.panicThresholdPercent ?? DEFAULTS.panicThresholdPercent,
    ...(lb?.hashOn ? { hashOn: lb.hashOn } : {}),
    ...(hc
      ? {
          healthCheck: {
            ...(hc.path !== undefined ? { path: hc.path } : {}),
            host: identity.host,
            intervalMs: hc.intervalMs ?? DEFAULTS.healthCheckIntervalMs,
            timeoutMs: hc.timeoutMs ?? DEFAULTS.healthCheckTimeoutMs,
            healthyThreshold: hc.healthyThreshold ?? DEFAULTS.healthyThreshold,
            unhealthyThreshold: hc.unhealthyThreshold ?? DEFAULTS.unhealthyThreshold,
          },
        }
      : {}),
    outlier: {
      consecutive5xx: od?.consecutive5xx ?? DEFAULTS.outlierConsecutive5xx,
      baseEjectionMs: od?.baseEjectionMs ?? DEFAULTS.outlierBaseEjectionMs,
      maxEjectionPercent: od?.maxEjectionPercent ?? DEFAULTS.outlierMaxEjectionPercent,
    },
    ...(events ? { events } : {}),
  };
}

/** A URL's `host` has no port when it is the scheme's default; an endpoint address always has one. */
function withPort(address: string, identity: URL): string {
  if (/:\d+$/.test(address)) return address;
  return `${address}:${identity.protocol === 'https:' ? 443 : 80}`;
}

function upstreamTls(config: Config, upstream: UpstreamConfig, origin: URL, trust: MeshTrust | undefined): UpstreamTls {
  const tls = upstream.tls ?? {};
  const caPem = tls.ca ? readPem(tls.ca) : trust?.caPem;
  if (!caPem) throw new Error(`upstream ${upstream.name}: no CA bundle to verify it against (set tls.ca or mesh)`);
  const mutual = tls.mutual ?? DEFAULTS.upstreamMutualTls;
  const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    caPem,
    ...(mutual && config.mesh ? { certPem: readPem(config.mesh.svid.cert), keyPem: readPem(config.mesh.svid.key) } : {}),
    // The SNI and the name checked are these, whatever the request's Host. RFC 6066 §3 forbids IP literals in SNI;
    // the certificate check then uses the IP SAN.
    ...(tls.serverName || !isIP(host) ? { serverName: tls.serverName ?? host } : {}),
    verifyName: tls.serverName ?? host,
    ...(tls.spiffeId ? { verify: spiffeVerifier(tls.spiffeId, caPem, tls.ca ? undefined : trust, trust?.revoked) } : {}),
    // DNS-named upstreams: the name check, then revocation (the SPIFFE verifier checks its own).
    ...(!tls.spiffeId && trust ? { revoked: trust.revoked } : {}),
  };
}

/** With a private `tls.ca`, that CA alone is the bundle of the expected ID's trust domain; `mesh.revoked` still applies. */
function spiffeVerifier(spiffeId: string, caPem: string, trust: MeshTrust | undefined, revoked: RevocationList | undefined): SpiffePeerVerifier {
  if (trust) return trust.verifier([spiffeId]);
  return createSpiffePeerVerifier({ bundles: { [parseSpiffeId(spiffeId).trustDomain]: caPem }, expected: [spiffeId], ...(revoked ? { revoked } : {}) });
}

function ownCertificates(config: Config): { name: string; notAfter: Date }[] {
  const files = [
    ...config.listeners.flatMap((l) =>
      l.hosts.flatMap((h) =>
        h.tls.mode === 'terminate'
          ? certificateList(h.tls.certificate).map((c, i, all) => ({ name: `${l.name}/${h.name}${all.length > 1 ? `#${i}` : ''}`, file: c.cert }))
          : [],
      ),
    ),
    ...(config.mesh ? [{ name: 'mesh-svid', file: config.mesh.svid.cert }] : []),
    ...(config.egress?.listener.tls ? [{ name: 'egress', file: config.egress.listener.tls.certificate.cert }] : []),
  ];
  return files.map(({ name, file }) => ({ name, notAfter: new Date(new X509Certificate(readPem(file)).validTo) }));
}
