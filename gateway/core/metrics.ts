// Prometheus metrics: every metric name is in METRIC_NAMES (the request and process ones come from their own files),
// on a registry owned by one gateway instance (never prom-client's global one, so tests and several gateways in one
// process do not collide). docs/operations.md lists each with its meaning.
// Recorders are on the request path: label children are bound once and cached, so a call is a few Map
// lookups and an increment, with no string building.
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { JwksState } from '../jwt/jwks-source.js';
import { PROCESS_METRIC_NAMES, registerProcessMetrics } from './process-metrics.js';
import { REQUEST_METRIC_NAMES, RequestMetrics, UPSTREAM_METRIC_NAMES, type RequestSeries } from './request-metrics.js';

export interface MetricsOptions {
  /**
   * Distinct egress destination hosts given their own label value; later ones are counted as `other`. Each
   * value is a time series in every scraper, and the hosts are chosen by workloads, not by the config.
   */
  maxEgressDestinations?: number;
}

/** What happened to a rate-limit decision while its shared store (Redis) was unreachable. */
export type RateLimitStoreOutcome = 'fallback' | 'allowed' | 'refused';

/** Something that can count its open connections (a `net.Server`). */
export interface ConnectionCounter {
  getConnections(callback: (err: Error | null, count: number) => void): unknown;
}

export interface Metrics {
  readonly registry: Registry;
  /**
   * One finished ingress request: `code` is the GW_* refusal code, or `ok` when it was proxied; the bytes are the
   * request and response bodies.
   */
  requests(route: string, status: number, code: string, seconds: number, bytesIn: number, bytesOut: number): void;
  /**
   * The upstream's series, made once per upstream name and kept by the compiled runtime: recording a request on it
   * is a few Map lookups, with no label hashing. Upstream names come from the config, so the series are bounded.
   */
  upstream(name: string): RequestSeries;
  /** `provider` is `unknown` when the token was refused before any provider could be told from it. */
  jwtFailure(provider: string, reason: string): void;
  /**
   * `policy`: the deciding policy, empty when none decided (`reason` then says why: no ALLOW policy matched, no
   * policy applies). `decision`: `allow`, `deny`, or `would_allow`/`would_deny` for dry-run policies.
   */
  authz(policy: string, decision: string, reason: string): void;
  /**
   * An enforcement point in `mode: dry-run` would have refused (gateway/core/dry-run.ts): `kind` is `jwt`, `authz`,
   * `egress`, `rate_limit` or `byte_budget`; `policy` the name of what would have refused.
   */
  dryRunWouldDeny(kind: string, policy: string): void;
  /**
   * One egress attempt, when it ends: `decision` is the policy's (`allow`, `deny`); `code` is `ok`, or the GW_* code
   * the client saw, so an allowed attempt whose upstream failed is `allow` with `GW_UPSTREAM_*`.
   */
  egress(host: string, decision: string, code: string, bytesUp: number, bytesDown: number): void;
  certificateExpiry(name: string, notAfter: Date): void;
  rateLimitHit(limit: string): void;
  rateLimitStoreFailure(limit: string, outcome: RateLimitStoreOutcome): void;
  /** Only a gateway with Redis configured calls this, so one without it exports no `portcullis_redis_up`. */
  redisUp(up: boolean): void;
  jwksState(provider: string, state: JwksState): void;
  /** A TLS connection refused before the handshake (SNI), failed in it, or whose client certificate was refused. */
  tlsHandshakeFailure(listener: string, reason: string): void;
  /** A connection closed as it was accepted, before any byte was read (`connection_budget`: the process's is spent). */
  connectionRefused(listener: string, reason: string): void;
  /** Counts the listener's open connections at each scrape. */
  trackConnections(listener: string, server: ConnectionCounter): void;
  /** An error nothing on its path handled (`uncaught_exception`, `unhandled_rejection`); the process stays up. */
  internalError(kind: string): void;
  /** Reads every upstream endpoint's state at each scrape; a later source (a reloaded runtime) replaces the earlier. */
  trackUpstreams(source: () => Iterable<UpstreamEndpointState>): void;
  /** Outlier detection took an endpoint out. */
  upstreamEjection(upstream: string, endpoint: string): void;
  /** A request refused 503 by one of the upstream's thresholds (`max_requests`, `max_pending_requests`). */
  upstreamOverloaded(upstream: string, reason: string): void;
  /** A retry made (`retried`) or refused (`budget_exhausted`, `max_retries`). */
  upstreamRetry(upstream: string, outcome: string): void;
  /** A route's mirrored copy: `sent`, `dropped` (over the shadow's bounds), `failed`, `not_buffered` (streamed body). */
  routeMirror(route: string, outcome: string): void;
  /** A write of audit records or of a checkpoint that failed (disk full, file gone read-only). */
  auditWriteFailure(): void;
}

export interface UpstreamEndpointState {
  upstream: string;
  endpoint: string;
  /** Passes its active checks and is not ejected: requests may go to it. */
  healthy: boolean;
  active: number;
}

export const METRIC_NAMES = {
  ...REQUEST_METRIC_NAMES,
  ...UPSTREAM_METRIC_NAMES,
  ...PROCESS_METRIC_NAMES,
  jwtFailures: 'portcullis_jwt_failures_total',
  authzDecisions: 'portcullis_authz_decisions_total',
  dryRunWouldDeny: 'portcullis_dry_run_would_deny_total',
  egressAttempts: 'portcullis_egress_attempts_total',
  egressSentBytes: 'portcullis_egress_sent_bytes_total',
  egressReceivedBytes: 'portcullis_egress_received_bytes_total',
  certificateExpiry: 'portcullis_certificate_expiry_timestamp_seconds',
  rateLimitHits: 'portcullis_rate_limit_hits_total',
  rateLimitStoreFailures: 'portcullis_rate_limit_store_failures_total',
  redisUp: 'portcullis_redis_up',
  jwksState: 'portcullis_jwks_state',
  workerRequests: 'portcullis_worker_requests_total',
  configReloads: 'portcullis_config_reloads_total',
  configLastReloadSuccess: 'portcullis_config_last_reload_success_timestamp_seconds',
  configInfo: 'portcullis_config_info',
  tlsHandshakeFailures: 'portcullis_tls_handshake_failures_total',
  openConnections: 'portcullis_open_connections',
  connectionsRefused: 'portcullis_connections_refused_total',
  internalErrors: 'portcullis_internal_errors_total',
  upstreamEndpointHealthy: 'portcullis_upstream_endpoint_healthy',
  upstreamEndpointActive: 'portcullis_upstream_endpoint_active_requests',
  upstreamEjections: 'portcullis_upstream_endpoint_ejections_total',
  upstreamOverloaded: 'portcullis_upstream_overloaded_total',
  upstreamRetries: 'portcullis_upstream_retries_total',
  routeMirrors: 'portcullis_route_mirror_requests_total',
  auditWriteFailures: 'portcullis_audit_write_failures_total',
} as const;

const JWKS_STATES: readonly JwksState[] = ['fresh', 'stale', 'empty'];
export const OTHER_DESTINATION = 'other';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const maxEgressDestinations = options.maxEgressDestinations ?? 500;
  if (!Number.isInteger(maxEgressDestinations) || maxEgressDestinations < 1) {
    throw new Error('metrics: maxEgressDestinations must be a positive integer');
  }
  const registry = new Registry();
  const registers = [registry];
  registerProcessMetrics(registry);
  const counter = (name: string, help: string, labelNames: readonly string[]) => new Counter({ name, help, labelNames, registers });

  const requests = new RequestMetrics(
    'route',
    { requests: METRIC_NAMES.requests, duration: METRIC_NAMES.requestDuration, requestBytes: METRIC_NAMES.requestBytes, responseBytes: METRIC_NAMES.responseBytes },
    {
      requests: 'Ingress requests by route, response status and gateway code (GW_* or ok)',
      duration: 'Ingress request duration by route and status class (2xx, 4xx, …), first byte in to last byte out',
      requestBytes: 'Ingress request body bytes received from clients, by route',
      responseBytes: 'Ingress response body bytes sent to clients, by route',
    },
  );
  const upstreams = new RequestMetrics(
    'upstream',
    {
      requests: METRIC_NAMES.upstreamRequests,
      duration: METRIC_NAMES.upstreamRequestDuration,
      requestBytes: METRIC_NAMES.upstreamSentBytes,
      responseBytes: METRIC_NAMES.upstreamReceivedBytes,
    },
    {
      requests: 'Ingress requests sent to each upstream, by the response status and gateway code (GW_* or ok) the client got',
      duration: 'Upstream request duration by upstream and status class, request handed to the pool to the last response byte (retries included)',
      requestBytes: 'Request body bytes sent to each upstream',
      responseBytes: 'Response body bytes received from each upstream and sent on to the client',
    },
  );
  // registerMetric is typed for prom-client's classes; the registry only reads name, help, type, aggregator, get, reset.
  for (const metric of [...requests.metrics, ...upstreams.metrics]) registry.registerMetric(metric as unknown as Counter);
  const jwtFailures = counter(METRIC_NAMES.jwtFailures, 'Rejected JWTs by provider (unknown before one could be told) and reason', [
    'provider',
    'reason',
  ]);
  const authzDecisions = counter(
    METRIC_NAMES.authzDecisions,
    'Authorization decisions: deciding policy (empty when none decided), decision (allow, deny, would_allow, would_deny) and reason',
    ['policy', 'decision', 'reason'],
  );
  const dryRunWouldDeny = counter(
    METRIC_NAMES.dryRunWouldDeny,
    'Would-deny decisions of enforcement points in dry-run mode, by kind (jwt, authz, egress, rate_limit, byte_budget) and the policy, rule, limit, provider or route that would have refused',
    ['kind', 'policy'],
  );
  const destinations = `destination host (at most ${maxEgressDestinations} distinct, then "${OTHER_DESTINATION}")`;
  const egressAttempts = counter(
    METRIC_NAMES.egressAttempts,
    `Egress attempts by ${destinations}, policy decision (allow, deny) and code (ok, or the GW_* code the client got)`,
    ['destination', 'decision', 'code'],
  );
  const egressSent = counter(METRIC_NAMES.egressSentBytes, `Egress bytes sent to the upstream, by ${destinations}`, ['destination']);
  const egressReceived = counter(METRIC_NAMES.egressReceivedBytes, `Egress bytes received from the upstream, by ${destinations}`, ['destination']);
  const certificateExpiry = new Gauge({
    name: METRIC_NAMES.certificateExpiry,
    help: 'notAfter of each certificate the gateway serves or presents, as a Unix time in seconds',
    labelNames: ['name'] as const,
    // Across workers: the soonest expiry, so an alert fires if any worker still serves an old certificate.
    aggregator: 'min',
    registers,
  });
  const rateLimitHits = counter(METRIC_NAMES.rateLimitHits, 'Requests refused by a rate limit', ['limit']);
  const rateLimitStoreFailures = counter(
    METRIC_NAMES.rateLimitStoreFailures,
    'Rate-limit decisions taken while Redis was unreachable: fallback (local limiter), allowed (fail open), refused (fail closed)',
    ['limit', 'outcome'],
  );
  let redisUp: Gauge | undefined;
  const jwksState = new Gauge({
    name: METRIC_NAMES.jwksState,
    help: 'JWKS state per provider: 1 for the current state (fresh, stale, empty), 0 for the others',
    labelNames: ['provider', 'state'] as const,
    // Across workers: 1 when any worker is in that state, so a stale or empty key set is never hidden by a sum.
    aggregator: 'max',
    registers,
  });
  const tlsHandshakeFailures = counter(
    METRIC_NAMES.tlsHandshakeFailures,
    'TLS connections refused before, during or right after the handshake, by listener and reason (not_tls, sni_unknown, no_shared_cipher, a refused client certificate, …)',
    ['listener', 'reason'],
  );
  const connectionsRefused = counter(
    METRIC_NAMES.connectionsRefused,
    'Connections closed as they were accepted, by listener (an edge listener or egress) and reason (connection_budget: the process has as many client connections open as its open-files limit allows)',
    ['listener', 'reason'],
  );
  const connectionSources = new Map<string, ConnectionCounter>();
  new Gauge({
    name: METRIC_NAMES.openConnections,
    help: 'Open TCP connections of each edge listener (terminated and passthrough)',
    labelNames: ['listener'] as const,
    registers,
    async collect() {
      const counts = await Promise.all([...connectionSources].map(([listener, server]) => openConnections(server).then((n) => [listener, n] as const)));
      for (const [listener, n] of counts) this.labels(listener).set(n);
    },
  });

  const internalErrors = counter(
    METRIC_NAMES.internalErrors,
    'Errors that escaped every handler (a bug): logged and counted instead of ending the process',
    ['kind'],
  );

  let upstreamSource: () => Iterable<UpstreamEndpointState> = () => [];
  new Gauge({
    name: METRIC_NAMES.upstreamEndpointHealthy,
    help: 'Per upstream endpoint: 1 while requests may go to it (passes its active checks, not ejected), else 0',
    labelNames: ['upstream', 'endpoint'] as const,
    // Across workers (each checks on its own): 0 when any worker has the endpoint out.
    aggregator: 'min',
    registers,
    collect() {
      // Reset first: endpoints gone from DNS or from a reloaded config must not linger.
      this.reset();
      for (const e of upstreamSource()) this.labels(e.upstream, e.endpoint).set(e.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.upstreamEndpointActive,
    help: 'Per upstream endpoint: requests in flight on it',
    labelNames: ['upstream', 'endpoint'] as const,
    registers,
    collect() {
      this.reset();
      for (const e of upstreamSource()) this.labels(e.upstream, e.endpoint).set(e.active);
    },
  });
  const upstreamEjections = counter(METRIC_NAMES.upstreamEjections, 'Endpoints taken out by outlier detection', ['upstream', 'endpoint']);
  const upstreamOverloaded = counter(
    METRIC_NAMES.upstreamOverloaded,
    'Requests refused 503 GW_UPSTREAM_OVERLOADED, by upstream and the threshold that refused them',
    ['upstream', 'reason'],
  );
  const upstreamRetries = counter(
    METRIC_NAMES.upstreamRetries,
    'Retries of upstream requests, by upstream and outcome: retried, or refused by budget_exhausted or max_retries',
    ['upstream', 'outcome'],
  );
  const routeMirrors = counter(
    METRIC_NAMES.routeMirrors,
    'Mirrored copies of route requests, by route and outcome: sent, dropped (over the shadow upstream\'s bounds), failed, not_buffered',
    ['route', 'outcome'],
  );
  const auditWriteFailures = createAuditFailureCounter(registry);

  const egressHosts = new Set<string>();
  const egressAttempt = bound<[string, string, string]>(egressAttempts);

  return {
    registry,
    requests(route, status, code, seconds, bytesIn, bytesOut) {
      requests.child(route).record(status, code, seconds, bytesIn, bytesOut);
    },
    upstream: (name) => upstreams.child(name),
    jwtFailure: bound<[string, string]>(jwtFailures),
    authz: bound<[string, string, string]>(authzDecisions),
    dryRunWouldDeny: bound<[string, string]>(dryRunWouldDeny),
    egress(host, decision, code, bytesUp, bytesDown) {
      let destination = host;
      if (!egressHosts.has(host)) {
        if (egressHosts.size >= maxEgressDestinations) destination = OTHER_DESTINATION;
        else egressHosts.add(host);
      }
      egressAttempt(destination, decision, code);
      if (bytesUp > 0) egressSent.labels(destination).inc(bytesUp);
      if (bytesDown > 0) egressReceived.labels(destination).inc(bytesDown);
    },
    certificateExpiry(name, notAfter) {
      certificateExpiry.labels(name).set(notAfter.getTime() / 1000);
    },
    rateLimitHit: bound<[string]>(rateLimitHits),
    rateLimitStoreFailure: bound<[string, RateLimitStoreOutcome]>(rateLimitStoreFailures),
    redisUp(up) {
      // Registered on first use: a gauge that exists without Redis would read 0 and fire the "Redis down" alert.
      redisUp ??= new Gauge({ name: METRIC_NAMES.redisUp, help: '1 while the rate-limit Redis is connected', aggregator: 'min', registers });
      redisUp.set(up ? 1 : 0);
    },
    internalError: bound<[string]>(internalErrors),
    auditWriteFailure() {
      auditWriteFailures.inc();
    },
    jwksState(provider, state) {
      for (const s of JWKS_STATES) jwksState.labels(provider, s).set(s === state ? 1 : 0);
    },
    tlsHandshakeFailure: bound<[string, string]>(tlsHandshakeFailures),
    connectionRefused: bound<[string, string]>(connectionsRefused),
    trackConnections(listener, server) {
      connectionSources.set(listener, server);
    },
    trackUpstreams(source) {
      upstreamSource = source;
    },
    upstreamEjection: bound<[string, string]>(upstreamEjections),
    upstreamOverloaded: bound<[string, string]>(upstreamOverloaded),
    upstreamRetry: bound<[string, string]>(upstreamRetries),
    routeMirror: bound<[string, string]>(routeMirrors),
  };
}

/**
 * Counts failed audit writes; made by whoever writes the trail: the gateway, or in multi-process mode the primary
 * (the workers' own counters then stay 0 and are left out of the machine's metrics).
 */
export function createAuditFailureCounter(registry: Registry): Counter {
  return new Counter({
    name: METRIC_NAMES.auditWriteFailures,
    help: 'Failed writes of audit records or checkpoints (disk full, file read-only); see audit.onWriteFailure',
    registers: [registry],
  });
}

function openConnections(server: ConnectionCounter): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, count) => resolve(err ? 0 : count)));
}

type CounterChild = ReturnType<Counter<string>['labels']>;
type ChildTree = Map<string, ChildTree | CounterChild>;

/**
 * A counter's label children, bound on first use and found again by one Map lookup per label: no label hashing or
 * string building per increment (these run on the request path).
 */
function bound<Labels extends string[]>(counter: Counter<string>): (...labels: Labels) => void {
  const root: ChildTree = new Map();
  return (...labels) => {
    let node = root;
    for (let i = 0; i < labels.length - 1; i++) {
      let next = node.get(labels[i]!) as ChildTree | undefined;
      if (!next) {
        next = new Map();
        node.set(labels[i]!, next);
      }
      node = next;
    }
    const last = labels[labels.length - 1]!;
    let child = node.get(last) as CounterChild | undefined;
    if (!child) {
      child = counter.labels(...labels);
      node.set(last, child);
    }
    child.inc();
  };
}

/**
 * Reload outcomes, kept by whoever applies reloads: the single process, or in multi-process mode the primary (it
 * validates once and applies to every worker), so they are counted once per machine, not once per worker.
 */
export interface ReloadMetrics {
  /** A config is in service (at start, or by a reload): its hash and the time. */
  active(hash: string): void;
  reload(result: 'success' | 'rejected'): void;
}

export function createReloadMetrics(registry: Registry): ReloadMetrics {
  const registers = [registry];
  const reloads = new Counter({
    name: METRIC_NAMES.configReloads,
    help: 'Config reloads by result: success (applied whole) or rejected (the running config stayed)',
    labelNames: ['result'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: METRIC_NAMES.configLastReloadSuccess,
    help: 'When the running config was put in service (start or the last successful reload), as a Unix time in seconds',
    registers,
  });
  const info = new Gauge({
    name: METRIC_NAMES.configInfo,
    help: 'The running config: 1, labelled with its SHA-256 (config and the content of every file it names)',
    labelNames: ['hash'] as const,
    registers,
  });
  // Both series exist from the start, so rate() and alerts see the first rejection.
  reloads.labels('success').inc(0);
  reloads.labels('rejected').inc(0);
  return {
    active(hash) {
      info.reset();
      info.labels(hash).set(1);
      lastSuccess.set(Date.now() / 1000);
    },
    reload: (result) => reloads.labels(result).inc(),
  };
}

/** One worker's registry, as `registry.getMetricsAsJSON()` returned it (sent to the primary over IPC). */
export interface WorkerMetrics {
  worker: string;
  metrics: MetricObjectWithValues<MetricValue<string>>[];
}

/**
 * The machine's metrics in multi-process mode: prom-client's cluster aggregation over the workers' registries
 * (counters and histograms summed, gauges by each metric's `aggregator`), plus each worker's request total so an
 * operator sees how evenly the kernel spreads connections.
 */
export function aggregateWorkerMetrics(workers: readonly WorkerMetrics[]): Registry {
  return AggregatorRegistry.aggregate(
    workers.map(({ worker, metrics }) => {
      const requests = metrics.find((m) => m.name === METRIC_NAMES.requests);
      const total = requests?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
      const perWorker = {
        name: METRIC_NAMES.workerRequests,
        help: 'Ingress requests answered by each worker process',
        type: 'counter',
        aggregator: 'sum',
        values: [{ labels: { worker }, value: total }],
      };
      return [...metrics, perWorker];
    }),
  );
}
