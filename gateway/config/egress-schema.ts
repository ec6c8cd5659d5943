// Egress section of the configuration (see gateway/config/schema.ts for conventions): the one way out of the mesh.
// Semantics follow Stripe Smokescreen (per-identity host allowlist, enforce/report, resolve-once IP guard) with two
// deliberate differences documented in docs/egress.md: global deny rules beat every allow, and deny ranges beat
// allow ranges (stripe/smokescreen#236).
import { Type, type Static } from '@sinclair/typebox';
import { Cidr, ClientCertTlsFields, DryRunSince, FilePath, Millis, Name, Obj, Port } from './schema-parts.js';

const DestinationPort = Type.Integer({ minimum: 1, maximum: 65535 });
const IpAddress = Type.String({ minLength: 2, maxLength: 64, description: 'IPv4 or IPv6 address' });
/** Checked and canonicalized (IDN → punycode) when the egress server is created, so Unicode names are accepted here. */
const HostPattern = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^(\\*\\.)?[^*\\s/@:\\[\\]%]+$',
  description: 'exact host name, or `*.` followed by a domain: any depth of subdomain, never the apex itself',
});
/**
 * Who a rule grants: a SPIFFE ID (`spiffe://td/ns/x/sa/y`), a SPIFFE ID prefix ending in `/*`
 * (`spiffe://td/ns/x/*`), a token's request principal `jwt:<iss>/<sub>`, the name of a `sourceIdentities` entry,
 * or `anonymous` (callers with no identity).
 */
const IdentityPattern = Type.String({
  pattern: '^(spiffe://[a-z0-9._-]+(/[A-Za-z0-9._~!$&\'()+,;=:@%-]+)*(/\\*)?|jwt:[^\\s]+|[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?)$',
});

export const EgressAllowRuleSchema = Obj({
  name: Name,
  identities: Type.Array(IdentityPattern, { minItems: 1 }),
  /** Destination host names; matched against the name the client asked for, never against resolved addresses. */
  hosts: Type.Optional(Type.Array(HostPattern)),
  /** Destination IP literals (the client asked for an address, not a name) this rule allows. */
  cidrs: Type.Optional(Type.Array(Cidr)),
  /** Destination ports. Default: 80 and 443. */
  ports: Type.Optional(Type.Array(DestinationPort, { minItems: 1 })),
  /**
   * `dry-run` allows every destination for these identities but logs `wouldDeny` for the unlisted ones (the same
   * name as an ingress policy's shadow mode); `report` is accepted as an alias.
   */
  mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run'), Type.Literal('report')])),
  dryRunSince: Type.Optional(DryRunSince),
  /**
   * Bytes (both directions) one CONNECT tunnel this rule allowed may carry, on top of `limits.maxBytesPerTunnel`.
   * `enforce` (default) cuts the tunnel there (`end: byte_budget_exceeded`); `dry-run` lets it run and reports a
   * would-deny (kind `byte_budget`) once, when the tunnel crosses it.
   */
  byteBudget: Type.Optional(
    Obj({
      maxBytesPerTunnel: Type.Integer({ minimum: 1 }),
      mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run')])),
      dryRunSince: Type.Optional(DryRunSince),
    }),
  ),
});

export const EgressDenyRuleSchema = Obj({
  name: Name,
  hosts: Type.Optional(Type.Array(HostPattern)),
  cidrs: Type.Optional(Type.Array(Cidr)),
  /** Unset: every port. */
  ports: Type.Optional(Type.Array(DestinationPort, { minItems: 1 })),
});

export const EgressSchema = Obj({
  listener: Obj({
    /** Default 127.0.0.1: a forward proxy is reachable from elsewhere only when the config says so. */
    address: Type.Optional(Type.String({ minLength: 1 })),
    port: Port,
    /** Serve the proxy over TLS so workloads authenticate with their X.509-SVID. */
    tls: Type.Optional(
      Obj({
        ...ClientCertTlsFields,
        /** `required` (default) refuses the handshake without a valid client certificate. */
        clientAuth: Type.Optional(Type.Union([Type.Literal('optional'), Type.Literal('required')])),
      }),
    ),
    maxHeaderBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 65_536 })),
    headersTimeoutMs: Type.Optional(Millis),
  }),
  /**
   * Callers without a client certificate may present `Proxy-Authorization: Bearer <JWT>`, verified like an
   * ingress token by these `jwtProviders`; their identity is `jwt:<iss>/<sub>` (Istio's request principal).
   * An invalid token is refused (407), never downgraded to the source address.
   */
  proxyAuthorization: Type.Optional(Obj({ providers: Type.Array(Name, { minItems: 1 }) })),
  /** Callers without a client certificate, identified by their source address. */
  sourceIdentities: Type.Optional(Type.Array(Obj({ name: Name, cidrs: Type.Array(Cidr, { minItems: 1 }) }))),
  /** Anything not allowed here is denied. */
  allow: Type.Array(EgressAllowRuleSchema),
  /** Checked first; a match denies whatever the allow rules say. */
  deny: Type.Optional(Type.Array(EgressDenyRuleSchema)),
  /** Exceptions to the built-in address guard (loopback, private, link-local, metadata, …). Deny beats allow. */
  addressGuard: Type.Optional(
    Obj({
      allowRanges: Type.Optional(Type.Array(Cidr)),
      allowAddresses: Type.Optional(Type.Array(IpAddress)),
      denyRanges: Type.Optional(Type.Array(Cidr)),
      denyAddresses: Type.Optional(Type.Array(IpAddress)),
    }),
  ),
  /** Static endpoints used instead of DNS (Istio ServiceEntry `resolution: STATIC`); still checked by the guard. */
  staticHosts: Type.Optional(
    Type.Array(Obj({ host: HostPattern, addresses: Type.Array(IpAddress, { minItems: 1 }) })),
  ),
  /**
   * Plain `http://host/…` requests (port 80) for these exact hosts are sent upstream over TLS to `port`
   * (Istio DestinationRule SIMPLE/MUTUAL); the allowlist is checked against the port that actually leaves.
   */
  originate: Type.Optional(
    Type.Array(
      Obj({
        host: HostPattern,
        /** TLS port dialled upstream. Default 443. */
        port: Type.Optional(DestinationPort),
        tls: Obj({
          /** CA bundle the server certificate is verified against; default: the system store. */
          ca: Type.Optional(FilePath),
          /** Present the gateway's SVID (`mesh.svid`). Default false. */
          mutual: Type.Optional(Type.Boolean()),
          /** SNI and name verified in the certificate; default: the requested host. */
          serverName: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
        }),
      }),
    ),
  ),
  limits: Type.Optional(
    Obj({
      /** TCP (and origination TLS) connect timeout. Default 10 s. */
      connectTimeoutMs: Type.Optional(Millis),
      /** DNS lookup timeout. Default 5 s. */
      dnsTimeoutMs: Type.Optional(Millis),
      /** A tunnel or forwarded exchange with no traffic either way for this long is closed. Default 5 min. */
      idleTimeoutMs: Type.Optional(Millis),
      /** How long a CONNECT client has to send its first bytes (the TLS ClientHello) after the 200. Default 10 s. */
      firstBytesTimeoutMs: Type.Optional(Millis),
      /** Bytes (both directions) after which a tunnel is cut and an alert written. Default unlimited. */
      maxBytesPerTunnel: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Concurrent upstream connections (CONNECT tunnels and forwarded requests) per identity; over it 429. Default 256. */
      maxTunnelsPerIdentity: Type.Optional(Type.Integer({ minimum: 1 })),
      /**
       * Concurrent upstream connections per source address, for callers identified by address (`sourceIdentities`)
       * or not at all, on top of the per-identity limit. Default 64.
       */
      maxTunnelsPerSource: Type.Optional(Type.Integer({ minimum: 1 })),
      /**
       * New upstream connections (CONNECT tunnels and forwarded HTTP requests) per identity per second; over it the
       * proxy answers 429 with Retry-After. Shared across replicas when `redis` is configured. Default unlimited.
       */
      newConnectionsPerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
      /** On shutdown, open tunnels get this long to finish before they are cut. Default 10 s. */
      shutdownGraceMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
    }),
  ),
  /**
   * DNS servers asked for destination names instead of the system resolver (`dns.Resolver`): `address` or
   * `address:port` (`[v6]:port`). Still resolved once per attempt and the checked address dialled.
   */
  resolver: Type.Optional(
    Obj({
      servers: Type.Array(Type.String({ minLength: 2, maxLength: 64 }), { minItems: 1 }),
      /** Per query to the servers; `limits.dnsTimeoutMs` still bounds the whole resolution. Default: dnsTimeoutMs. */
      timeoutMs: Type.Optional(Millis),
    }),
  ),
  reload: Type.Optional(
    Obj({
      /**
       * On a reload, tunnels opened under the old config that the new one would refuse (allowlist, deny rules,
       * address guard exceptions) are cut and audited with `end: revoked`. Default false: they run to their end.
       */
      cutRevokedTunnels: Type.Optional(Type.Boolean()),
    }),
  ),
  audit: Type.Optional(
    Obj({
      /** JSON-lines file receiving every egress decision, in addition to the process log. */
      file: Type.Optional(FilePath),
    }),
  ),
});

export type EgressConfig = Static<typeof EgressSchema>;
export type EgressAllowRule = Static<typeof EgressAllowRuleSchema>;
export type EgressDenyRule = Static<typeof EgressDenyRuleSchema>;
