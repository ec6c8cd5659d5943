// Operations sections of the configuration: admin plane, Redis, rate limits (issue #5). Semantics and examples in
// docs/operations.md; conventions as in schema.ts.
import { Type, type Static } from '@sinclair/typebox';
import { ClientCertTlsFields, DryRunSince, FilePath, Millis, Name, Obj, Port, SpiffeId } from './schema-parts.js';

export const AdminSchema = Obj({
  /** Default 127.0.0.1: the admin plane is reachable from elsewhere only when the config says so. */
  address: Type.Optional(Type.String({ minLength: 1 })),
  /** Default 9901 (Envoy's admin port). */
  port: Type.Optional(Port),
  /** File holding the bearer token for `/config` and `/reload` (at least 16 characters; surrounding whitespace ignored). */
  tokenFile: Type.Optional(FilePath),
  /**
   * Serve the admin plane over HTTPS and accept client certificates: a verified one whose SPIFFE ID is listed
   * may use `/config` and `/reload`. Health, readiness and metrics stay open to clients without one.
   */
  tls: Type.Optional(
    Obj({
      ...ClientCertTlsFields,
      allowedSpiffeIds: Type.Array(SpiffeId, { minItems: 1 }),
    }),
  ),
});

export const RedisSchema = Obj({
  /** `redis://[:password@]host:port[/db]` or `rediss://…` (TLS). Default: the `PORTCULLIS_REDIS_URL` environment variable. */
  url: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** Prefix of every key the gateway writes, so several gateways (or environments) can share one Redis. Default `portcullis:`. */
  keyPrefix: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9:._-]+$' })),
  /** Default 1000 ms. */
  connectTimeoutMs: Type.Optional(Millis),
  /** A Redis command slower than this counts as Redis being down for that request. Default 100 ms. */
  commandTimeoutMs: Type.Optional(Millis),
});

const RateLimitKey = Type.String({
  pattern: '^(client_ip|jwt_subject|spiffe_id|header:[a-z0-9][a-z0-9-]*)$',
  description: 'client_ip | jwt_subject | spiffe_id | header:<lower-case name>',
});

const rateLimitCommon = {
  name: Name,
  /** Extra requests allowed above the steady rate, regained at that rate. Default 0. */
  burst: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  /** What a request is counted by. Default `client_ip`; the others fall back to it when the request has no such value. */
  key: Type.Optional(RateLimitKey),
  /** While Redis is unreachable: `open` (default) counts locally per replica, `closed` refuses with 503. */
  failureMode: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')])),
  /**
   * `dry-run`: requests over the limit are let through and reported (`DRY_RUN_WOULD_DENY`, kind `rate_limit`), and a
   * Redis outage never refuses (503) for it. Default `enforce`. Optional like every `mode`; `dryRunSince` as on policies.
   */
  mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('dry-run')])),
  dryRunSince: Type.Optional(DryRunSince),
};

export const RateLimitSchema = Type.Union([
  Obj({ ...rateLimitCommon, requestsPerSecond: Type.Integer({ minimum: 1, maximum: 1_000_000 }) }),
  Obj({
    ...rateLimitCommon,
    requests: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    perSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  }),
]);

/** The tamper-evident audit trail (gateway/audit/); semantics and the verify command in docs/operations.md. */
export const AuditSchema = Obj({
  /** Hash-chained JSON-lines file: every egress decision and every ingress refusal. Created with its folder. */
  file: FilePath,
  /** Also record ingress requests that were allowed and proxied. Default false. */
  ingressAllows: Type.Optional(Type.Boolean()),
  /** Past this size the file is renamed `<file>.<n>` and a new one started; the chain runs on across files. Default 100 MiB. */
  maxFileBytes: Type.Optional(Type.Integer({ minimum: 4096 })),
  /** While records cannot be written (disk full): `refuse` answers new traffic 503 until they can; `continue` serves and drops them. Default `refuse`. */
  onWriteFailure: Type.Optional(Type.Union([Type.Literal('refuse'), Type.Literal('continue')])),
  /** Signed checkpoints: the last record's sequence number and hash, signed with Ed25519, in a file of their own. */
  checkpoints: Type.Optional(
    Obj({
      /** JSON-lines file of checkpoints (ship it elsewhere: it is what proves a truncated tail). */
      file: FilePath,
      /** Ed25519 private key, PEM (PKCS#8), e.g. `openssl genpkey -algorithm ed25519`. */
      keyFile: FilePath,
      /** A checkpoint after this many records. Default 1000. */
      everyRecords: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
      /** And at least this often while records arrive. Default 60 s. */
      everySeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    }),
  ),
});

export type AdminConfig = Static<typeof AdminSchema>;
export type RedisConfig = Static<typeof RedisSchema>;
export type AuditConfig = Static<typeof AuditSchema>;
export type RateLimitConfig = Static<typeof RateLimitSchema>;

/**
 * OpenTelemetry tracing (docs/operations.md#tracing). Each field left out falls back to the standard `OTEL_*`
 * environment variable, then to the default: the file wins, so what `validate` shows is what runs.
 */
export const TracingSchema = Obj({
  /** Off by default; only the config file turns tracing on. */
  enabled: Type.Boolean(),
  /** The collector's OTLP/HTTP traces URL (`http://collector:4318/v1/traces`). Else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  endpoint: Type.Optional(Type.String({ pattern: '^https?://[^/?#\\s]+(/[^\\s]*)?$' })),
  /** Share of new traces recorded (0 to 1); a request that comes with a trace context follows its parent's choice. */
  samplingRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** `service.name` of the spans. Else `OTEL_SERVICE_NAME`, then `portcullis`. */
  serviceName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** Extra headers on export requests (a collector's API key); never shown by `/config`. */
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String())),
});
export type TracingConfig = Static<typeof TracingSchema>;
