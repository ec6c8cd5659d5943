// The secure defaults, in one place. Code reads `config.x ?? DEFAULTS.x`; the loader never writes them into the
// config, because "unset" must stay distinguishable from "set to the default" in a config dump and on reload.
import type { EgressConfig } from './egress-schema.js';
import type { Config, JwtProviderConfig, ListenerConfig, UpstreamConfig, VirtualHostConfig } from './schema.js';

type TerminateTls = Extract<VirtualHostConfig['tls'], { mode: 'terminate' }>;
type Timeouts = NonNullable<ListenerConfig['timeouts']>;
type Limits = NonNullable<ListenerConfig['limits']>;
type Algorithm = NonNullable<JwtProviderConfig['algorithms']>[number];
type TokenHeader = NonNullable<JwtProviderConfig['fromHeaders']>[number];

export interface Defaults {
  readonly listenerAddress: NonNullable<ListenerConfig['address']>;
  readonly tlsMinVersion: NonNullable<TerminateTls['minVersion']>;
  readonly clientAuth: NonNullable<TerminateTls['clientAuth']>;
  readonly handshakeTimeoutMs: NonNullable<Timeouts['handshakeMs']>;
  readonly headersTimeoutMs: NonNullable<Timeouts['headersMs']>;
  readonly requestTimeoutMs: NonNullable<Timeouts['requestMs']>;
  readonly idleTimeoutMs: NonNullable<Timeouts['idleMs']>;
  readonly maxHeaderBytes: NonNullable<Limits['maxHeaderBytes']>;
  readonly maxHeaders: NonNullable<Limits['maxHeaders']>;
  readonly routeMaxBodyBytes: number;
  readonly jwtAlgorithms: readonly Algorithm[];
  readonly jwtFromHeaders: readonly Readonly<TokenHeader>[];
  readonly jwtClockSkewSeconds: NonNullable<JwtProviderConfig['clockSkewSeconds']>;
  readonly jwksCacheSeconds: NonNullable<JwtProviderConfig['jwksCacheSeconds']>;
  readonly jwksCooldownSeconds: NonNullable<JwtProviderConfig['jwksCooldownSeconds']>;
  readonly jwksTimeoutMs: NonNullable<JwtProviderConfig['jwksTimeoutMs']>;
  readonly upstreamProtocol: NonNullable<UpstreamConfig['protocol']>;
  readonly upstreamMutualTls: boolean;
  readonly upstreamConnections: NonNullable<UpstreamConfig['connections']>;
  readonly upstreamConnectTimeoutMs: NonNullable<UpstreamConfig['connectTimeoutMs']>;
  readonly upstreamTimeoutMs: NonNullable<UpstreamConfig['timeoutMs']>;
  readonly stateDir: NonNullable<Config['stateDir']>;
  readonly logLevel: NonNullable<NonNullable<Config['log']>['level']>;
  readonly watchIntervalMs: number;
  readonly egress: EgressDefaults;
}

type EgressLimits = NonNullable<EgressConfig['limits']>;
type EgressListener = EgressConfig['listener'];

export interface EgressDefaults {
  readonly listenerAddress: NonNullable<EgressListener['address']>;
  readonly clientAuth: 'optional' | 'required';
  readonly connectTimeoutMs: NonNullable<EgressLimits['connectTimeoutMs']>;
  readonly dnsTimeoutMs: NonNullable<EgressLimits['dnsTimeoutMs']>;
  readonly idleTimeoutMs: NonNullable<EgressLimits['idleTimeoutMs']>;
  readonly firstBytesTimeoutMs: NonNullable<EgressLimits['firstBytesTimeoutMs']>;
  readonly maxTunnelsPerIdentity: NonNullable<EgressLimits['maxTunnelsPerIdentity']>;
  readonly maxTunnelsPerSource: NonNullable<EgressLimits['maxTunnelsPerSource']>;
  readonly shutdownGraceMs: NonNullable<EgressLimits['shutdownGraceMs']>;
  readonly originatePort: number;
}

export const DEFAULTS: Defaults = Object.freeze({
  /** Every interface, as most gateways do; bind narrower in the config when the host has several networks. */
  listenerAddress: '0.0.0.0',
  /** TLS 1.0/1.1 are deprecated by RFC 8996; 1.2 stays for clients that lack 1.3. */
  tlsMinVersion: 'TLSv1.2',
  /** Client certificates are opt-in per virtual host: most edge clients (browsers, CLIs) have none. */
  clientAuth: 'none',
  /** A peer that has not finished its TLS handshake in 10 s is holding a socket for nothing. */
  handshakeTimeoutMs: 10_000,
  /** Slowloris: headers trickled byte by byte must not hold a connection open (Node's own default is 60 s). */
  headersTimeoutMs: 10_000,
  /** Caps a whole request (slow bodies included) so one client cannot pin a worker indefinitely. */
  requestTimeoutMs: 30_000,
  /** Keep-alive connections with no request in flight are closed after a minute. */
  idleTimeoutMs: 60_000,
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
  /** Generated material (dev CA, keys) lives here; the folder is git-ignored. */
  stateDir: '.portcullis',
  /** `info` logs one line per decision; `debug` is for development only (more detail, more volume). */
  logLevel: 'info',
  /** Input files are polled each second: a rotated certificate is live within a second or two. */
  watchIntervalMs: 1_000,
  egress: Object.freeze({
    /** A forward proxy is reachable from other hosts only when the config says so. */
    listenerAddress: '127.0.0.1',
    /** The TLS proxy listener exists to identify workloads by their SVID: no certificate, no handshake. */
    clientAuth: 'required',
    /** Internet destinations are slower than mesh upstreams; still bounded so a black hole costs 10 s, not minutes. */
    connectTimeoutMs: 10_000,
    /** A resolver that does not answer must not hold a tunnel slot for long. */
    dnsTimeoutMs: 5_000,
    /** Long-lived tunnels (database, streaming) are normal; five silent minutes are not. */
    idleTimeoutMs: 300_000,
    /** A CONNECT client has this long after the 200 to send its ClientHello (or first bytes). */
    firstBytesTimeoutMs: 10_000,
    /** Concurrent upstream connections of one identity: enough for a busy service, bounded for a runaway one. */
    maxTunnelsPerIdentity: 256,
    /**
     * Concurrent upstream connections of one source address among callers identified by address or not at all:
     * a quarter of an identity's budget, so one pod behind a shared source identity (or one anonymous caller)
     * cannot starve the others.
     */
    maxTunnelsPerSource: 64,
    /** Open tunnels get as long as ingress requests to finish on shutdown. */
    shutdownGraceMs: 10_000,
    /** `originate` sends the request to the HTTPS port unless told otherwise. */
    originatePort: 443,
  }),
});
