// The policy language: one schema that is both the JSON Schema the loader validates against and the
// source of the TypeScript types. Field names follow Istio's AuthorizationPolicy
// (istio/api security/v1beta1/authorization_policy.proto); docs/policies.md lists where we differ.
import { Type, type Static } from '@sinclair/typebox';

const StringList = Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: 1024 });

export const SourceSchema = Type.Object(
  {
    /** mTLS peer SPIFFE ID, written `td/ns/x/sa/y` as in Istio or with the `spiffe://` prefix. */
    principals: Type.Optional(StringList),
    notPrincipals: Type.Optional(StringList),
    /** JWT `<iss>/<sub>`. */
    requestPrincipals: Type.Optional(StringList),
    notRequestPrincipals: Type.Optional(StringList),
    /** Peer trust domain of the mTLS client certificate. */
    trustDomains: Type.Optional(StringList),
    notTrustDomains: Type.Optional(StringList),
    /** Source address of the TCP connection, CIDR or single address. */
    ipBlocks: Type.Optional(StringList),
    notIpBlocks: Type.Optional(StringList),
    /** Client address taken from X-Forwarded-For, honoured only from `trustedProxies`. */
    remoteIpBlocks: Type.Optional(StringList),
    notRemoteIpBlocks: Type.Optional(StringList),
  },
  { additionalProperties: false },
);

export const OperationSchema = Type.Object(
  {
    hosts: Type.Optional(StringList),
    notHosts: Type.Optional(StringList),
    methods: Type.Optional(StringList),
    notMethods: Type.Optional(StringList),
    /**
     * Normalized path, query and fragment removed. Exact, `prefix*`, `*suffix`, `*` (any), or a template.
     * Letter case as the route's `pathCase` says; by default DENY `paths` / ALLOW `notPaths` ignore case.
     */
    paths: Type.Optional(StringList),
    notPaths: Type.Optional(StringList),
    ports: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }))),
    notPorts: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }))),
  },
  { additionalProperties: false },
);

export const ConditionSchema = Type.Object(
  {
    /**
     * `request.headers[name]`, `request.auth.claims[name]` (nested: `[a][b]`), `request.auth.principal`,
     * `request.auth.audiences`, `source.ip`, `remote.ip`, `source.principal`, `destination.port`, `connection.sni`.
     */
    key: Type.String({ minLength: 1, maxLength: 256 }),
    values: Type.Optional(StringList),
    notValues: Type.Optional(StringList),
  },
  { additionalProperties: false },
);

export const RuleSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    from: Type.Optional(Type.Array(Type.Object({ source: SourceSchema }, { additionalProperties: false }))),
    to: Type.Optional(Type.Array(Type.Object({ operation: OperationSchema }, { additionalProperties: false }))),
    when: Type.Optional(Type.Array(ConditionSchema)),
  },
  { additionalProperties: false },
);

/**
 * The day something went into `mode: dry-run` (`2026-11-01`, UTC), on any enforcement point that has a mode:
 * `portcullis lint` reports a dry-run older than `--max-dry-run-days`. Read only while the mode is `dry-run`.
 */
export const DryRunSinceSchema = Type.String({
  pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$',
  description: 'a date, YYYY-MM-DD',
});

export const PolicySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9]([-a-z0-9_.]{0,126}[a-z0-9])?$' }),
    action: Type.Union([Type.Literal('ALLOW'), Type.Literal('DENY'), Type.Literal('AUDIT')]),
    /** `dry-run` evaluates and logs what it would have decided, without enforcing it (Istio's `istio.io/dry-run`). */
    mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run')])),
    dryRunSince: Type.Optional(DryRunSinceSchema),
    /**
     * Route names this policy applies to, or passthrough host names (their connections, judged by address, port and
     * SNI only); unset means every route (Istio's root-namespace policy), never a passthrough host.
     */
    routes: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** Unset with ALLOW allows nothing; `[{}]` matches every request (Istio semantics). */
    rules: Type.Optional(Type.Array(RuleSchema)),
  },
  { additionalProperties: false },
);

/** A policy file: a version and a list of policies. */
export const PolicyFileSchema = Type.Object(
  {
    version: Type.Literal('v1'),
    policies: Type.Array(PolicySchema),
  },
  { additionalProperties: false },
);

export type Source = Static<typeof SourceSchema>;
export type Operation = Static<typeof OperationSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type Rule = Static<typeof RuleSchema>;
export type Policy = Static<typeof PolicySchema>;
export type PolicyFile = Static<typeof PolicyFileSchema>;
