// The gateway's configuration: one JSON Schema (built with TypeBox) that the loader validates every file
// against and that the TypeScript types are derived from, so the two can never disagree.
// Defaults are secure where the config is silent; they live in defaults.ts and are never written into the config.
import { Type, type Static } from '@sinclair/typebox';
import { Cidr, DryRunSince, FilePath, Millis, Name, Obj, Port, SpiffeId } from './schema-parts.js';
import { PolicySchema } from '../../policies/schema.js';
import { EgressSchema } from './egress-schema.js';
import { MatchExtensions, RouteTrafficFields } from './route-traffic-schema.js';
import { AdminSchema, AuditSchema, RateLimitSchema, RedisSchema, TracingSchema } from './operations-schema.js';

const Hostname = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^(\\*\\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\\.?$',
  description: 'DNS name, optionally with a leading `*.` wildcard label',
});

export const CertificateSchema = Obj({ cert: FilePath, key: FilePath }, 'PEM certificate chain and private key');
type Certificate = Static<typeof CertificateSchema>;

/**
 * One certificate, or several of different key types (RSA and ECDSA side by side): OpenSSL serves each client the
 * one its signature algorithms can verify.
 */
export const CertificatesSchema = Type.Union([CertificateSchema, Type.Array(CertificateSchema, { minItems: 1, maxItems: 3 })]);

/** The certificate list of a virtual host, whichever form the config used. */
export const certificateList = (certificate: Certificate | Certificate[]): Certificate[] =>
  Array.isArray(certificate) ? certificate : [certificate];

/**
 * TLS 1.2 suites a listener may enable: ECDHE key exchange (forward secrecy) with an AEAD cipher only, i.e. Mozilla's
 * "intermediate" profile without its DHE suites (finite-field DH needs parameters we do not ship). Anything else
 * (CBC, RSA key exchange, SHA-1 MACs, export, NULL) is refused by the schema. TLS 1.3 suites are all strong and are
 * left to OpenSSL.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;

/** Key-exchange groups a listener may offer; Mozilla intermediate uses the first three. */
export const TLS_CURVES = ['X25519', 'P-256', 'P-384', 'X448', 'P-521'] as const;

export const TlsVersionSchema = Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')]);

export const VirtualHostSchema = Obj({
  name: Name,
  /** Exact names or `*.` wildcards; the SNI and the HTTP Host must both match. */
  hostnames: Type.Array(Hostname, { minItems: 1 }),
  tls: Type.Union([
    Obj({
      mode: Type.Literal('terminate'),
      certificate: CertificatesSchema,
      /** Client certificates: `none` (default), `optional` (verified if sent) or `required`. */
      clientAuth: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('optional'), Type.Literal('required')])),
      /** CA bundle client certificates are verified against; defaults to the mesh trust bundle. */
      clientCa: Type.Optional(FilePath),
      minVersion: Type.Optional(TlsVersionSchema),
    }),
    Obj({
      mode: Type.Literal('passthrough'),
      /** Upstream that receives the raw TLS stream. */
      upstream: Name,
    }),
  ]),
});

export const ListenerSchema = Obj({
  name: Name,
  address: Type.Optional(Type.String({ minLength: 1 })),
  port: Port,
  hosts: Type.Array(VirtualHostSchema, { minItems: 1 }),
  /**
   * The virtual host served to a ClientHello without SNI (clients that connect by IP address); unset, such
   * connections are refused. Its HTTP `Host` check still applies.
   */
  defaultHost: Type.Optional(Name),
  /** TLS 1.2 parameters for every terminating host of the listener; Mozilla intermediate by default. */
  tls: Type.Optional(
    Obj({
      ciphers: Type.Optional(Type.Array(Type.Union(TLS12_CIPHERS.map((c) => Type.Literal(c))), { minItems: 1 })),
      curves: Type.Optional(Type.Array(Type.Union(TLS_CURVES.map((c) => Type.Literal(c))), { minItems: 1 })),
    }),
  ),
  timeouts: Type.Optional(
    Obj({
      handshakeMs: Type.Optional(Millis),
      headersMs: Type.Optional(Millis),
      /** The whole request, head and body, must have arrived within this (else 408). */
      requestMs: Type.Optional(Millis),
      /** Longest pause between two chunks of a request body (else 408). */
      bodyIdleMs: Type.Optional(Millis),
      /** Longest a client may leave the answer unread before it is cut and the upstream released. */
      writeIdleMs: Type.Optional(Millis),
      /** Longest a keep-alive connection, or a passthrough one, may carry no byte before it is closed. */
      idleMs: Type.Optional(Millis),
    }),
  ),
  limits: Type.Optional(
    Obj({
      maxHeaderBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1_048_576 })),
      maxHeaders: Type.Optional(Type.Integer({ minimum: 8, maximum: 1000 })),
      maxConnections: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Connections open at once from one client address (an IPv6 client's /64); unset: no per-source limit. */
      maxConnectionsPerSource: Type.Optional(Type.Integer({ minimum: 1 })),
      /** HTTP/2: streams open at once per connection, counting requests still in the pipeline after a reset. */
      maxConcurrentStreams: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
      /** HTTP/2: stream resets per connection per second before it gets GOAWAY (Rapid Reset). */
      maxStreamResetsPerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    }),
  ),
});

export const ClaimHeaderSchema = Obj({
  header: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
  /** Claim name, nested with dots (`a.b.c`); string, number and boolean claims only. */
  claim: Type.String({ minLength: 1 }),
});

export const RequiredClaimSchema = Obj({
  /** Claim name, nested with dots (`a.b.c`). */
  claim: Type.String({ minLength: 1 }),
  /** Accepted values (compared as text); unset means any value, as long as the claim is present. */
  values: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
});

export const JwtProviderSchema = Obj({
  name: Name,
  issuer: Type.String({ minLength: 1 }),
  /** Any-of; an empty list means the audience is not checked (Envoy semantics). */
  audiences: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  jwksUri: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Inline JWKS document (as JSON text or an object). */
  jwks: Type.Optional(Type.Union([Type.String(), Type.Object({ keys: Type.Array(Type.Object({})) })])),
  jwksFile: Type.Optional(FilePath),
  /** Allowed `alg` values; asymmetric only by default. */
  algorithms: Type.Optional(
    Type.Array(
      Type.Union(
        ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'].map((a) =>
          Type.Literal(a),
        ),
      ),
      { minItems: 1 },
    ),
  ),
  clockSkewSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 600 })),
  /** Where the token is read from. Default: `Authorization: Bearer`. */
  fromHeaders: Type.Optional(Type.Array(Obj({ name: Type.String({ minLength: 1 }), prefix: Type.Optional(Type.String()) }))),
  fromCookies: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  fromParams: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  forwardOriginalToken: Type.Optional(Type.Boolean()),
  claimsToHeaders: Type.Optional(Type.Array(ClaimHeaderSchema)),
  /** How long a fetched JWKS is fresh; after that it is refetched but kept while the endpoint fails. */
  jwksCacheSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Minimum interval between refetches triggered by an unknown `kid`. */
  jwksCooldownSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  jwksTimeoutMs: Type.Optional(Millis),
  /** Refuse tokens without `exp` (Envoy's require_expiration); default true, since such a token never expires. */
  requireExpiration: Type.Optional(Type.Boolean()),
  /** Claims every token of this provider must carry; with `values`, the claim (or one element of an array claim) must be one of them. */
  requiredClaims: Type.Optional(Type.Array(RequiredClaimSchema)),
  /**
   * `dry-run`: on ingress routes, a token this provider refuses (expired, bad signature, wrong audience, …) is not
   * answered 401: the request goes on without it (anonymous; the token is stripped) and a would-deny is reported
   * (kind `jwt`). Egress proxy tokens are always enforced. Default `enforce`.
   */
  mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run')])),
  dryRunSince: Type.Optional(DryRunSince),
});

/** One place an upstream's requests may go: `host:port` (an IP address or a DNS name) and its share of them. */
export const EndpointSchema = Obj({
  address: Type.String({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$' }),
  weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});

export const UpstreamSchema = Obj({
  name: Name,
  /** `http://host:port`, `https://host:port`; for passthrough upstreams `tcp://host:port`. */
  url: Type.String({ pattern: '^(https?|tcp)://[^/?#]+/?$' }),
  /** HTTP version spoken to the upstream: `http1` (default) or `h2` (needed for gRPC). */
  protocol: Type.Optional(Type.Union([Type.Literal('http1'), Type.Literal('h2')])),
  tls: Type.Optional(
    Obj({
      /** CA bundle the upstream's certificate is verified against; defaults to the mesh trust bundle. */
      ca: Type.Optional(FilePath),
      /** Present the gateway's SVID (mutual TLS). Default true for https upstreams. */
      mutual: Type.Optional(Type.Boolean()),
      /** Expected SPIFFE ID in the upstream certificate's URI SAN; when unset the DNS name is checked. */
      spiffeId: Type.Optional(SpiffeId),
      serverName: Type.Optional(Type.String({ minLength: 1 })),
    }),
  ),
  /** HTTP/1.1: pool connections; h2: concurrent streams. Requests beyond it wait in a bounded queue. */
  connections: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  /** Requests that may wait for a free connection or stream; beyond it, 503 at once. */
  maxPendingRequests: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
  connectTimeoutMs: Type.Optional(Millis),
  /** Time to the response headers, and then between body chunks (504); a route's timeoutMs overrides it. */
  timeoutMs: Type.Optional(Millis),
  /**
   * Where requests are sent instead of the URL's host and port; the URL still gives the scheme and the name the
   * TLS identity is checked against (docs/traffic.md). At most one of `endpoints` and `dns`.
   */
  endpoints: Type.Optional(Type.Array(EndpointSchema, { minItems: 1, maxItems: 1024 })),
  /** Endpoints from a DNS name (every A and AAAA answer; a Kubernetes headless Service), re-resolved. */
  dns: Type.Optional(
    Obj({
      name: Hostname,
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      refreshSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
      /** Accept loopback answers (127.0.0.0/8, ::1); unspecified, link-local and multicast ones are always dropped. */
      allowLoopback: Type.Optional(Type.Boolean()),
    }),
  ),
  loadBalancer: Type.Optional(
    Obj({
      /** `roundRobin` (smooth weighted), `leastRequest` (power of two choices) or `consistentHash` (ring hash). */
      policy: Type.Optional(Type.Union([Type.Literal('roundRobin'), Type.Literal('leastRequest'), Type.Literal('consistentHash')])),
      /** The key of `consistentHash`: one request header, cookie, or the client address. */
      hashOn: Type.Optional(
        Type.Union([
          Obj({ header: Type.String({ pattern: '^[a-z0-9!#$%&\'*+.^_`|~-]+$' }) }),
          Obj({ cookie: Type.String({ minLength: 1, maxLength: 256 }) }),
          Obj({ sourceIp: Type.Literal(true) }),
        ]),
      ),
      /** Below this share of available endpoints, requests go to every endpoint (Envoy's healthy panic threshold). */
      panicThresholdPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    }),
  ),
  /** Active checks of each endpoint: an HTTP GET of `path` answered 2xx, or without `path` a TCP connect. */
  healthCheck: Type.Optional(
    Obj({
      path: Type.Optional(Type.String({ pattern: '^/[^\\s]*$', maxLength: 1024 })),
      intervalMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
      timeoutMs: Type.Optional(Millis),
      healthyThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
      unhealthyThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    }),
  ),
  /** Passive checks: an endpoint whose answers keep failing is ejected for a while (Envoy's outlier detection). */
  outlierDetection: Type.Optional(
    Obj({
      /** Consecutive failures (5xx answers, connect failures, resets, timeouts) that eject an endpoint. */
      consecutive5xx: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
      /** An ejection lasts this times the number of times the endpoint was ejected. */
      baseEjectionMs: Type.Optional(Millis),
      /** At most this share of the endpoints is ejected at once (always at least one). */
      maxEjectionPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    }),
  ),
  /** Requests running or waiting at once across the upstream's endpoints; beyond it, 503 at once (Envoy's max_requests). */
  maxRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  /** Retries in flight at once on this upstream, whatever the routes' retry budgets allow (Envoy's max_retries). */
  maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
});

/**
 * ASCII letter case when routes and policies match paths. Unset: DENY `paths` (and ALLOW `notPaths`) fold
 * case, routes and ALLOW `paths` do not, and a path that selects another route once folded is refused, so
 * neither a case-folding backend (IIS, Express, some Spring setups) nor a case-sensitive one is exposed.
 * `insensitive`: everything folds. `sensitive`: nothing folds (re-opens `/ADMIN` on case-folding backends).
 */
export const PathCaseSchema = Type.Union([Type.Literal('sensitive'), Type.Literal('insensitive')]);

/**
 * Request headers that make some frameworks serve another path or method than the request line names
 * (Symfony/Zend `X-Original-URL`, `X-Rewrite-URL`; nginx `auth_request`'s `X-Original-URI`; Traefik's
 * `X-Forwarded-Uri`; Spring's `X-Forwarded-Prefix`; method overrides of Express, Rails, ASP.NET, Google APIs).
 * Stripped from every request unless the route lists the header in `allowOverrideHeaders`.
 */
export const REQUEST_LINE_OVERRIDE_HEADERS = [
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-prefix',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

/** gRPC status names (grpc/grpc doc/statuscodes.md), in code order from 1; Istio's `grpcStatus` values. */
export const GRPC_STATUS_NAMES = [
  'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

const Percent = Type.Number({ minimum: 0, maximum: 100, description: 'share of requests, in percent (fractions allowed)' });

/** Fault injection (Istio's HTTPFaultInjection): a share of the requests delayed, a share aborted. Off unless set. */
export const FaultSchema = Type.Object(
  {
    delay: Type.Optional(Obj({ percent: Percent, fixedDelayMs: Millis })),
    abort: Type.Optional(
      Obj({
        percent: Percent,
        httpStatus: Type.Integer({ minimum: 400, maximum: 599 }),
        /** What gRPC requests get instead; unset: gRPC's own mapping of `httpStatus` (503 → UNAVAILABLE). */
        grpcStatus: Type.Optional(Type.Union(GRPC_STATUS_NAMES.map((n) => Type.Literal(n)))),
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

/** What a route's `retries.on` may name: failures, then gRPC statuses (Envoy's and Istio's `retryOn` names). */
export const RETRY_ON = ['connect-failure', 'reset', 'cancelled', 'deadline-exceeded', 'resource-exhausted', 'internal', 'unavailable'] as const;

export const RouteSchema = Obj({
  name: Name,
  match: Obj({
    /** Virtual host names (from listeners[].hosts[].name); unset means every terminating host. */
    hosts: Type.Optional(Type.Array(Name)),
    path: Type.Optional(
      Type.Union([Obj({ exact: Type.String({ pattern: '^/' }) }), Obj({ prefix: Type.String({ pattern: '^/' }) })]),
    ),
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }))),
    ...MatchExtensions,
  }),
  /** Exactly one of `upstream`, `backendRefs` or a `RequestRedirect` filter says where a request goes. */
  upstream: Type.Optional(Name),
  ...RouteTrafficFields,
  /** JWT providers whose tokens this route accepts; unset means all providers. */
  jwtProviders: Type.Optional(Type.Array(Name)),
  /**
   * `required`: a request without a valid token is answered 401 with a `WWW-Authenticate: Bearer` challenge before
   * authorization runs. `optional` (default, Istio semantics): it goes on anonymous and the policy decides (403).
   */
  authentication: Type.Optional(Type.Union([Type.Literal('required'), Type.Literal('optional')])),
  /**
   * With `authentication: required`, `dry-run` lets a request without a valid token go on anonymous (the policy
   * decides) and reports a would-deny (kind `jwt`, the route's name as `policy`). Default `enforce`.
   */
  authenticationMode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run')])),
  authenticationDryRunSince: Type.Optional(DryRunSince),
  maxBodyBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  timeoutMs: Type.Optional(Millis),
  /** Name of a `rateLimits` entry applied to this route. */
  rateLimit: Type.Optional(Name),
  /** Case in route and policy path matching for this route; overrides the top-level `pathCase`. */
  pathCase: Type.Optional(PathCaseSchema),
  /** Opt-outs from the strict path normalization, for backends that need them; each re-opens an attack class (docs/policies.md). */
  pathNormalization: Type.Optional(
    Obj({
      /** `;parameters` on name segments: matched without them, forwarded with them (Java session IDs, matrix URIs). */
      allowSemicolonParams: Type.Optional(Type.Boolean()),
      /** `%25` accepted as data: re-opens double decoding. */
      allowEncodedPercent: Type.Optional(Type.Boolean()),
      /** `nfkc`: percent-encoded UTF-8 decoded, NFKC-folded, matched and forwarded folded; `reject` (default): 400. */
      decodeUtf8: Type.Optional(Type.Union([Type.Literal('reject'), Type.Literal('nfkc')])),
    }),
  ),
  /** Retries of idempotent requests that failed before any answer reached the client (docs/traffic.md). */
  retries: Type.Optional(
    Obj({
      /** Tries after the first. */
      attempts: Type.Integer({ minimum: 1, maximum: 10 }),
      /**
       * `connect-failure` (refused, unreachable, wrong identity), `reset` (closed under the request, per-try timeout);
       * gRPC trailers-only answers with one of these `grpc-status` values (Envoy's retry_on names).
       */
      on: Type.Optional(Type.Array(Type.Union(RETRY_ON.map((c) => Type.Literal(c))), { uniqueItems: true })),
      /** Upstream answers retried too (discarded unseen unless the last try's). */
      statusCodes: Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), { uniqueItems: true })),
      /** Each try's time to the answer; unset: the route's timeoutMs, and a try that runs out is not retried. */
      perTryTimeoutMs: Type.Optional(Millis),
      /** Exponential backoff between tries, with full jitter: random(0, min(maxMs, baseMs × 2^n)). */
      backoff: Type.Optional(
        Obj({ baseMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 })), maxMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 })) }),
      ),
      /** Retries in flight on the upstream stay under this share of its requests in flight (at least 3). */
      budgetPercent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
      /** Also retry POST, PATCH and other non-idempotent methods (only when the backend deduplicates them). */
      nonIdempotent: Type.Optional(Type.Boolean()),
    }),
  ),
  /**
   * WebSocket (`Upgrade: websocket` over HTTP/1.1) proxied after every check: `true`, or its limits. Off unless set;
   * every other upgrade (h2c above all) is refused whatever this says (docs/traffic.md).
   */
  websocket: Type.Optional(
    Type.Union([
      Type.Boolean(),
      Obj({
        /** No byte in either direction for this long closes the WebSocket. */
        idleTimeoutMs: Type.Optional(Millis),
        /** A WebSocket is closed this long after it opened, busy or not. */
        maxDurationMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
      }),
    ]),
  ),
  /** Resilience testing: requests delayed or aborted before they are forwarded (docs/traffic.md). */
  fault: Type.Optional(FaultSchema),
  /** Request-line override headers this route forwards (lower case); all others are stripped. */
  allowOverrideHeaders: Type.Optional(Type.Array(Type.Union(REQUEST_LINE_OVERRIDE_HEADERS.map((h) => Type.Literal(h))))),
});

export const MeshIdentitySchema = Obj({
  trustDomain: Type.String({ pattern: '^[a-z0-9._-]+$' }),
  /** The gateway's own X.509-SVID, presented to upstreams. */
  svid: CertificateSchema,
  /** Trust bundle (PEM CA certificates) of the mesh's own trust domain; several CAs may overlap during rotation. */
  bundle: FilePath,
  /** Bundles of other trust domains whose SVIDs are accepted; each verifies only IDs of its own domain. */
  federatedBundles: Type.Optional(
    Type.Array(Obj({ trustDomain: Type.String({ pattern: '^[a-z0-9._-]+$' }), bundle: FilePath })),
  ),
  /** Refused whichever CA issued them: ingress client certificates, upstream servers, admin-plane and egress clients, egress origination servers. */
  revoked: Type.Optional(
    Obj({
      /** Certificate serial numbers, hex (colons and case ignored). */
      serials: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9A-Fa-f:]+$' }))),
      spiffeIds: Type.Optional(Type.Array(SpiffeId)),
    }),
  ),
});

export const DevSchema = Obj(
  {
    /** Demo backend that demands a client certificate, started in-process. */
    demoBackendPort: Type.Optional(Port),
    /** Development token issuer: serves its JWKS on this port. */
    tokenIssuerPort: Type.Optional(Port),
  },
  'development helpers; never use in production',
);

export const ConfigSchema = Obj({
  version: Type.Literal('v1'),
  /** Folder for generated material (dev CA, keys); git-ignored. */
  stateDir: Type.Optional(FilePath),
  log: Type.Optional(
    Obj({
      level: Type.Optional(
        Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
      ),
    }),
  ),
  mesh: Type.Optional(MeshIdentitySchema),
  reload: Type.Optional(
    Obj({
      /** How often input files (config, policies, certificates) are checked for changes; 0 turns watching off. */
      watchIntervalMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
    }),
  ),
  /** Peers whose X-Forwarded-* headers are believed. */
  trustedProxies: Type.Optional(Type.Array(Cidr)),
  /** Case in route and policy path matching, for every route that does not set its own. */
  pathCase: Type.Optional(PathCaseSchema),
  listeners: Type.Array(ListenerSchema),
  jwtProviders: Type.Optional(Type.Array(JwtProviderSchema)),
  /** Verified-token cache (Envoy's jwt_cache_config): entries never outlive the token's `exp`; 0 turns it off. */
  jwtCache: Type.Optional(Obj({ maxEntries: Type.Integer({ minimum: 0, maximum: 1_000_000 }) })),
  upstreams: Type.Array(UpstreamSchema),
  routes: Type.Array(RouteSchema),
  /** Inline policies. */
  policies: Type.Optional(Type.Array(PolicySchema)),
  /** Policy files (each `{version: v1, policies: [...]}`), relative to this file. */
  policyFiles: Type.Optional(Type.Array(FilePath)),
  /** The admin plane: health, readiness, metrics, and secured config dump / reload. */
  admin: Type.Optional(AdminSchema),
  /** Shared state for rate limits across replicas. */
  redis: Type.Optional(RedisSchema),
  rateLimits: Type.Optional(Type.Array(RateLimitSchema)),
  /** OpenTelemetry tracing of ingress requests and egress attempts; off unless `enabled`. */
  tracing: Type.Optional(TracingSchema),
  /** The egress forward proxy (CONNECT and absolute-form HTTP). */
  egress: Type.Optional(EgressSchema),
  /** The tamper-evident audit trail: hash-chained records of every egress decision and ingress refusal. */
  audit: Type.Optional(AuditSchema),
  shutdown: Type.Optional(
    Obj({
      /** On SIGTERM, how long accepted requests get to finish before what is left is cut and the process exits. */
      drainMs: Type.Optional(Millis),
    }),
  ),
  dev: Type.Optional(DevSchema),
});

export type Config = Static<typeof ConfigSchema>;
export type ListenerConfig = Static<typeof ListenerSchema>;
export type VirtualHostConfig = Static<typeof VirtualHostSchema>;
export type JwtProviderConfig = Static<typeof JwtProviderSchema>;
export type UpstreamConfig = Static<typeof UpstreamSchema>;
export type EndpointConfig = Static<typeof EndpointSchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type MeshIdentityConfig = Static<typeof MeshIdentitySchema>;

/** What a policy's `routes` may name: the routes, and the passthrough hosts (whose connections policies judge too). */
export function policyTargets(config: Config): { routes: string[]; passthroughHosts: string[] } {
  return {
    routes: config.routes.map((r) => r.name),
    passthroughHosts: config.listeners.flatMap((l) => l.hosts.filter((h) => h.tls.mode === 'passthrough').map((h) => h.name)),
  };
}
