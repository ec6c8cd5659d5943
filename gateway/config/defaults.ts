// The secure defaults, in one place. Code reads `config.x ?? DEFAULTS.x`; the loader never writes them into the
// config, because "unset" must stay distinguishable from "set to the default" in a config dump and on reload.
// docs/configuration.md's Defaults table is checked against this one (test/unit/config/defaults.test.ts).
import type { EgressConfig } from './egress-schema.js';
import type { AdminConfig, AuditConfig, RateLimitConfig, RedisConfig, TracingConfig } from './operations-schema.js';
import { TLS12_CIPHERS, type Config, type JwtProviderConfig, type ListenerConfig, type RouteConfig, type UpstreamConfig, type VirtualHostConfig } from './schema.js';

type TerminateTls = Extract<VirtualHostConfig['tls'], { mode: 'terminate' }>;
type Timeouts = NonNullable<ListenerConfig['timeouts']>;
type ListenerTls = NonNullable<ListenerConfig['tls']>;
type Limits = NonNullable<ListenerConfig['limits']>;
type Algorithm = NonNullable<JwtProviderConfig['algorithms']>[number];
type TokenHeader = NonNullable<JwtProviderConfig['fromHeaders']>[number];
type LoadBalancer = NonNullable<UpstreamConfig['loadBalancer']>;
type HealthCheck = NonNullable<UpstreamConfig['healthCheck']>;
type OutlierDetection = NonNullable<UpstreamConfig['outlierDetection']>;
type Retries = NonNullable<RouteConfig['retries']>;
type EgressListener = EgressConfig['listener'];
type EgressLimits = NonNullable<EgressConfig['limits']>;

export interface Defaults {
  readonly listenerAddress: NonNullable<ListenerConfig['address']>;
  readonly tlsMinVersion: NonNullable<TerminateTls['minVersion']>;
  readonly clientAuth: NonNullable<TerminateTls['clientAuth']>;
  readonly tls12Ciphers: Readonly<NonNullable<ListenerTls['ciphers']>>;
  readonly tlsCurves: Readonly<NonNullable<ListenerTls['curves']>>;
  readonly handshakeTimeoutMs: NonNullable<Timeouts['handshakeMs']>;
  readonly headersTimeoutMs: NonNullable<Timeouts['headersMs']>;
  readonly requestTimeoutMs: NonNullable<Timeouts['requestMs']>;
  readonly bodyIdleTimeoutMs: NonNullable<Timeouts['bodyIdleMs']>;
  readonly writeIdleTimeoutMs: NonNullable<Timeouts['writeIdleMs']>;
  readonly idleTimeoutMs: NonNullable<Timeouts['idleMs']>;
  readonly maxConcurrentStreams: NonNullable<Limits['maxConcurrentStreams']>;
  readonly maxStreamResetsPerSecond: NonNullable<Limits['maxStreamResetsPerSecond']>;
  readonly upstreamMaxPendingRequests: NonNullable<UpstreamConfig['maxPendingRequests']>;
  readonly drainMs: number;
  readonly maxHeaderBytes: NonNullable<Limits['maxHeaderBytes']>;
  readonly maxHeaders: NonNullable<Limits['maxHeaders']>;
  readonly routeMaxBodyBytes: number;
  readonly jwtAlgorithms: readonly Algorithm[];
  readonly jwtFromHeaders: readonly Readonly<TokenHeader>[];
  readonly jwtClockSkewSeconds: NonNullable<JwtProviderConfig['clockSkewSeconds']>;
  readonly jwksCacheSeconds: NonNullable<JwtProviderConfig['jwksCacheSeconds']>;
  readonly jwksCooldownSeconds: NonNullable<JwtProviderConfig['jwksCooldownSeconds']>;
  readonly jwksTimeoutMs: NonNullable<JwtProviderConfig['jwksTimeoutMs']>;
  readonly jwtRequireExpiration: NonNullable<JwtProviderConfig['requireExpiration']>;
  readonly routeAuthentication: NonNullable<RouteConfig['authentication']>;
  readonly upstreamProtocol: NonNullable<UpstreamConfig['protocol']>;
  readonly upstreamMutualTls: boolean;
  readonly upstreamConnections: NonNullable<UpstreamConfig['connections']>;
  readonly upstreamConnectTimeoutMs: NonNullable<UpstreamConfig['connectTimeoutMs']>;
  readonly upstreamTimeoutMs: NonNullable<UpstreamConfig['timeoutMs']>;
  readonly loadBalancerPolicy: NonNullable<LoadBalancer['policy']>;
  readonly panicThresholdPercent: NonNullable<LoadBalancer['panicThresholdPercent']>;
  readonly dnsRefreshSeconds: NonNullable<NonNullable<UpstreamConfig['dns']>['refreshSeconds']>;
  readonly healthCheckIntervalMs: NonNullable<HealthCheck['intervalMs']>;
  readonly healthCheckTimeoutMs: NonNullable<HealthCheck['timeoutMs']>;
  readonly healthyThreshold: NonNullable<HealthCheck['healthyThreshold']>;
  readonly unhealthyThreshold: NonNullable<HealthCheck['unhealthyThreshold']>;
  readonly outlierConsecutive5xx: NonNullable<OutlierDetection['consecutive5xx']>;
  readonly outlierBaseEjectionMs: NonNullable<OutlierDetection['baseEjectionMs']>;
  readonly outlierMaxEjectionPercent: NonNullable<OutlierDetection['maxEjectionPercent']>;
  readonly retryOn: Readonly<NonNullable<Retries['on']>>;
  readonly retryBackoffBaseMs: number;
  readonly retryBackoffMaxMs: number;
  readonly retryBudgetPercent: NonNullable<Retries['budgetPercent']>;
  readonly websocketIdleTimeoutMs: number;
  readonly websocketMaxDurationMs: number;
  readonly backendWeight: number;
  readonly redirectStatusCode: 301 | 302 | 303 | 307 | 308;
  readonly mirrorPercent: number;
  readonly stateDir: NonNullable<Config['stateDir']>;
  readonly logLevel: NonNullable<NonNullable<Config['log']>['level']>;
  readonly watchIntervalMs: number;
  readonly jwtTokenCacheSize: NonNullable<NonNullable<Config['jwtCache']>['maxEntries']>;
  readonly adminAddress: NonNullable<AdminConfig['address']>;
  readonly adminPort: NonNullable<AdminConfig['port']>;
  readonly redisKeyPrefix: NonNullable<RedisConfig['keyPrefix']>;
  readonly redisConnectTimeoutMs: NonNullable<RedisConfig['connectTimeoutMs']>;
  readonly redisCommandTimeoutMs: NonNullable<RedisConfig['commandTimeoutMs']>;
  readonly rateLimitKey: NonNullable<RateLimitConfig['key']>;
  readonly rateLimitFailureMode: NonNullable<RateLimitConfig['failureMode']>;
  readonly tracingSamplingRatio: NonNullable<TracingConfig['samplingRatio']>;
  readonly tracingServiceName: NonNullable<TracingConfig['serviceName']>;
  readonly egressListenerAddress: NonNullable<EgressListener['address']>;
  readonly egressMaxHeaderBytes: NonNullable<EgressListener['maxHeaderBytes']>;
  readonly egressHeadersTimeoutMs: NonNullable<EgressListener['headersTimeoutMs']>;
  readonly egressClientAuth: NonNullable<NonNullable<EgressListener['tls']>['clientAuth']>;
  readonly egressPorts: readonly number[];
  readonly egressOriginatePort: number;
  readonly auditMaxFileBytes: NonNullable<AuditConfig['maxFileBytes']>;
  readonly auditOnWriteFailure: NonNullable<AuditConfig['onWriteFailure']>;
  readonly auditCheckpointEveryRecords: number;
  readonly auditCheckpointEverySeconds: number;
  readonly egressLimits: Readonly<Required<Omit<EgressLimits, 'maxBytesPerTunnel' | 'newConnectionsPerSecond'>>>;
}

export const DEFAULTS: Defaults = Object.freeze({
  /** Every interface, as most gateways do; bind narrower in the config when the host has several networks. */
  listenerAddress: '0.0.0.0',
  /** TLS 1.0/1.1 are deprecated by RFC 8996; 1.2 stays for clients that lack 1.3. */
  tlsMinVersion: 'TLSv1.2',
  /** Client certificates are opt-in per virtual host: most edge clients (browsers, CLIs) have none. */
  clientAuth: 'none',
  /** Mozilla "intermediate" TLS 1.2 suites (ECDHE + AEAD: forward secrecy, no CBC), in its order of preference. */
  tls12Ciphers: Object.freeze([...TLS12_CIPHERS]),
  /** Mozilla "intermediate" groups: X25519 first, then the NIST curves most clients have. */
  tlsCurves: Object.freeze(['X25519', 'P-256', 'P-384'] as const),
  /** A peer that has not finished its TLS handshake in 10 s is holding a socket for nothing. */
  handshakeTimeoutMs: 10_000,
  /** Slowloris: headers trickled byte by byte must not hold a connection open (Node's own default is 60 s). */
  headersTimeoutMs: 10_000,
  /** Caps a whole request (slow bodies included) so one client cannot pin a worker indefinitely. */
  requestTimeoutMs: 30_000,
  /** A body that stops arriving is a slowloris on the body: the same bound as for headers. */
  bodyIdleTimeoutMs: 10_000,
  /** A client that reads nothing for 30 s holds an upstream connection for nothing (nginx's send_timeout is 60 s). */
  writeIdleTimeoutMs: 30_000,
  /** Keep-alive connections with no request in flight are closed after a minute. */
  idleTimeoutMs: 60_000,
  /** nginx's default; bounds the work one HTTP/2 connection can have in the pipeline at once. */
  maxConcurrentStreams: 128,
  /** A browser cancels a few streams per page; a hundred per second is the Rapid Reset attack (CVE-2023-44487). */
  maxStreamResetsPerSecond: 100,
  /** Beyond the pool, a bounded wait: an overloaded upstream answers 503 at once instead of growing a queue. */
  upstreamMaxPendingRequests: 256,
  /** SIGTERM: accepted requests get 10 s to finish (Kubernetes' grace period is 30 s), then the rest is cut. */
  drainMs: 10_000,
  /** 16 KiB like Node's default: larger header blocks are almost always abuse (answered 431). */
  maxHeaderBytes: 16_384,
  /** Bounds per-request header parsing work; 100 is Envoy's default too. */
  maxHeaders: 100,
  /** Bodies are buffered nowhere, but an unbounded upload is still a cheap denial of service. */
  routeMaxBodyBytes: 1_048_576,
  /** Asymmetric only: an HMAC or `none` alg with a public key is the classic JWT key-confusion attack (CVE-2015-9235). */
  jwtAlgorithms: Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const),
  /** RFC 6750 section 2.1 bearer header, as Envoy's jwt_authn does when no location is configured. */
  jwtFromHeaders: Object.freeze([Object.freeze({ name: 'authorization', prefix: 'Bearer ' })]),
  /** Envoy's jwt_authn default; tolerates clock drift between issuer and gateway without accepting stale tokens for long. */
  jwtClockSkewSeconds: 60,
  /** Ten minutes like jose's default cache age: key rotation is picked up without fetching per request. */
  jwksCacheSeconds: 600,
  /** An unknown `kid` triggers at most one refetch per 30 s, so forged tokens cannot hammer the issuer (jose default). */
  jwksCooldownSeconds: 30,
  /** A hung JWKS endpoint must not stall requests for longer than this. */
  jwksTimeoutMs: 5_000,
  /** Envoy's require_expiration: a token without `exp` would stay valid for as long as its key is published. */
  jwtRequireExpiration: true,
  /** Istio semantics: no token is anonymous and the policy decides; `required` answers 401 with a challenge instead. */
  routeAuthentication: 'optional',
  /** HTTP/1.1 unless the upstream is declared h2 (gRPC needs it). */
  upstreamProtocol: 'http1',
  /** Zero trust: https upstreams get the gateway's SVID, so backends can authenticate the gateway. */
  upstreamMutualTls: true,
  /** Per-upstream connection pool size; bounds what one backend can cost the gateway. */
  upstreamConnections: 64,
  /** An unreachable upstream fails fast (502) instead of queueing requests. */
  upstreamConnectTimeoutMs: 5_000,
  /** Same bound as the request timeout: an upstream slower than that is answered 504. */
  upstreamTimeoutMs: 30_000,
  /** Smooth weighted round robin spreads evenly with no per-request randomness (nginx, Envoy's default). */
  loadBalancerPolicy: 'roundRobin',
  /** Envoy's default: with fewer than half the endpoints available, spreading over all beats overloading the rest. */
  panicThresholdPercent: 50,
  /** A headless Service's pods come and go; 30 s bounds how long a gone pod keeps getting picked (ejection covers the gap). */
  dnsRefreshSeconds: 30,
  /** Often enough to notice a dead endpoint within seconds, rare enough to cost the backend nothing. */
  healthCheckIntervalMs: 5_000,
  /** A health check slower than a second counts as failed. */
  healthCheckTimeoutMs: 1_000,
  /** Two passes in a row bring an endpoint back, so one lucky answer does not. */
  healthyThreshold: 2,
  /** Three failures in a row take it out, so one lost packet does not. */
  unhealthyThreshold: 3,
  /** Envoy's default: five failures in a row eject an endpoint. */
  outlierConsecutive5xx: 5,
  /** Envoy's default; the ejection grows with each repeat, so a flapping endpoint stays out longer. */
  outlierBaseEjectionMs: 30_000,
  /** Envoy's default: passive checks alone never empty an upstream (at least one endpoint may still be ejected). */
  outlierMaxEjectionPercent: 10,
  /** The failures where the request surely did not run, or died with its connection; chosen 5xx codes are opt-in. */
  retryOn: Object.freeze(['connect-failure', 'reset'] as const),
  /** Envoy's: a first retry within 25 ms, at most 250 ms between tries. */
  retryBackoffBaseMs: 25,
  retryBackoffMaxMs: 250,
  /** Envoy's retry budget default: retries add at most a fifth to an upstream's load. */
  retryBudgetPercent: 20,
  /** Envoy's stream idle timeout: a WebSocket silent for 5 minutes is most likely abandoned. */
  websocketIdleTimeoutMs: 300_000,
  /** An hour: a client must reconnect now and then, so a token that expired or a policy that changed applies again. */
  websocketMaxDurationMs: 3_600_000,
  /** Gateway API's: backendRefs without weights share a route's requests evenly. */
  backendWeight: 1,
  /** Gateway API's: a temporary redirect, so a wrong one is not cached by browsers for good. */
  redirectStatusCode: 302,
  /** Gateway API's: a mirror without a percent copies every request. */
  mirrorPercent: 100,
  /** Generated material (dev CA, keys) lives here; the folder is git-ignored. */
  stateDir: '.portcullis',
  /** `info` logs one line per decision; `debug` is for development only (more detail, more volume). */
  logLevel: 'info',
  /** Input files are polled each second: a rotated certificate is live within a second or two. */
  watchIntervalMs: 1_000,
  /** Verified tokens remembered (LRU, never past `exp`): repeated tokens skip the signature check. */
  jwtTokenCacheSize: 1000,
  /** Health and metrics are unauthenticated, so the admin plane is reachable only from this machine unless told. */
  adminAddress: '127.0.0.1',
  /** Envoy's admin port. */
  adminPort: 9901,
  /** Several gateways or environments can share one Redis under different prefixes. */
  redisKeyPrefix: 'portcullis:',
  /** An unreachable Redis is noticed within a second, and the limits fall back per their failureMode. */
  redisConnectTimeoutMs: 1_000,
  /** A slow Redis must not add more than this to a request. */
  redisCommandTimeoutMs: 100,
  /** Counted per client address unless the limit says otherwise. */
  rateLimitKey: 'client_ip',
  /** While Redis is down each replica counts on its own rather than refusing every request. */
  rateLimitFailureMode: 'open',
  /** OpenTelemetry's own default (`parentbased_always_on`): when tracing is on, every new trace is recorded. */
  tracingSamplingRatio: 1,
  /** What the spans' `service.name` says when neither the file nor `OTEL_SERVICE_NAME` names the service. */
  tracingServiceName: 'portcullis',
  /** The egress proxy serves this machine's workloads unless it is told to listen wider. */
  egressListenerAddress: '127.0.0.1',
  /** Like the edge listeners. */
  egressMaxHeaderBytes: 16_384,
  /** Slowloris on the proxy port. */
  egressHeadersTimeoutMs: 10_000,
  /** A workload that reaches the TLS proxy port must present its SVID. */
  egressClientAuth: 'required',
  /** Web ports only, unless a rule lists others. */
  egressPorts: Object.freeze([80, 443]),
  /** TLS origination speaks HTTPS to the destination. */
  egressOriginatePort: 443,
  /** Files a log shipper can pick up whole; the chain runs on across them. */
  auditMaxFileBytes: 104_857_600,
  /** Fail closed like every other decision: nothing is served that the audit trail could not record. */
  auditOnWriteFailure: 'refuse',
  /** Bounds how many records a rewrite or a cut tail can hide behind the last signed checkpoint. */
  auditCheckpointEveryRecords: 1000,
  /** And bounds how long, on a quiet gateway. */
  auditCheckpointEverySeconds: 60,
  egressLimits: Object.freeze({
    /** Destinations are outside the mesh and may be far away: longer than the upstream connect timeout. */
    connectTimeoutMs: 10_000,
    /** A hung resolver refuses the attempt instead of holding it. */
    dnsTimeoutMs: 5_000,
    /** Idle tunnels are closed after five minutes. */
    idleTimeoutMs: 300_000,
    /** A client that opens a tunnel and sends nothing is not holding a slot for long. */
    firstBytesTimeoutMs: 10_000,
    /** One workload cannot take every tunnel of the proxy. */
    maxTunnelsPerIdentity: 256,
    /**
     * Among callers identified by address or not at all, one source address gets a quarter of an identity's
     * budget, so one pod behind a shared source identity (or one anonymous caller) cannot starve the others.
     */
    maxTunnelsPerSource: 64,
    /** Open tunnels get this long to finish at shutdown, then they are cut. */
    shutdownGraceMs: 10_000,
  }),
});
