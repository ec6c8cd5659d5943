// Prometheus metrics: every metric name is declared here, once, on a registry owned by one gateway instance
// (never prom-client's global one, so tests and several gateways in one process do not collide).
// Recorders are on the request path: label children are bound once and cached, so a call is a few Map
// lookups and an increment, with no string building.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { JwksState } from '../jwt/jwks-source.js';

export interface MetricsOptions {
  /**
   * Distinct egress destination hosts given their own label value; later ones are counted as `other`. Each
   * value is a time series in every scraper, and the hosts are chosen by workloads, not by the config.
   */
  maxEgressDestinations?: number;
}

/** What happened to a rate-limit decision while its shared store (Redis) was unreachable. */
export type RateLimitStoreOutcome = 'fallback' | 'allowed' | 'refused';

export interface Metrics {
  readonly registry: Registry;
  /** One finished ingress request: `code` is the GW_* refusal code, or `ok` when it was proxied. */
  requests(route: string, status: number, code: string, seconds: number): void;
  jwtFailure(provider: string, reason: string): void;
  /** `decision`: `allow`, `deny`, or `would_deny` for a dry-run policy. */
  authz(policy: string, decision: string): void;
  egress(host: string, decision: string): void;
  certificateExpiry(name: string, notAfter: Date): void;
  rateLimitHit(limit: string): void;
  rateLimitStoreFailure(limit: string, outcome: RateLimitStoreOutcome): void;
  redisUp(up: boolean): void;
  jwksState(provider: string, state: JwksState): void;
}

export const METRIC_NAMES = {
  requests: 'portcullis_requests_total',
  requestDuration: 'portcullis_request_duration_seconds',
  jwtFailures: 'portcullis_jwt_failures_total',
  authzDecisions: 'portcullis_authz_decisions_total',
  egressAttempts: 'portcullis_egress_attempts_total',
  certificateExpiry: 'portcullis_certificate_expiry_seconds',
  rateLimitHits: 'portcullis_rate_limit_hits_total',
  rateLimitStoreFailures: 'portcullis_rate_limit_store_failures_total',
  redisUp: 'portcullis_redis_up',
  jwksState: 'portcullis_jwks_state',
  workerRequests: 'portcullis_worker_requests_total',
} as const;

/** A proxy adds well under a millisecond when healthy and should time out long before 5 s. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const JWKS_STATES: readonly JwksState[] = ['fresh', 'stale', 'empty'];
export const OTHER_DESTINATION = 'other';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const maxEgressDestinations = options.maxEgressDestinations ?? 500;
  if (!Number.isInteger(maxEgressDestinations) || maxEgressDestinations < 1) {
    throw new Error('metrics: maxEgressDestinations must be a positive integer');
  }
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const requests = new RequestMetrics();
  // registerMetric is typed for prom-client's classes; the registry only reads name, help, type, aggregator, get, reset.
  registry.registerMetric(requests.total as unknown as Counter);
  registry.registerMetric(requests.duration as unknown as Histogram);
  const jwtFailures = new Counter({
    name: METRIC_NAMES.jwtFailures,
    help: 'Rejected JWTs by provider and reason',
    labelNames: ['provider', 'reason'] as const,
    registers,
  });
  const authzDecisions = new Counter({
    name: METRIC_NAMES.authzDecisions,
    help: 'Authorization decisions by deciding policy (allow, deny, would_deny for dry-run policies)',
    labelNames: ['policy', 'decision'] as const,
    registers,
  });
  const egressAttempts = new Counter({
    name: METRIC_NAMES.egressAttempts,
    help: `Egress attempts by destination host (at most ${maxEgressDestinations} distinct, then "${OTHER_DESTINATION}") and decision`,
    labelNames: ['destination', 'decision'] as const,
    registers,
  });
  const certificateExpiry = new Gauge({
    name: METRIC_NAMES.certificateExpiry,
    help: 'notAfter of each certificate the gateway serves or presents, as a Unix time in seconds',
    labelNames: ['name'] as const,
    // Across workers: the soonest expiry, so an alert fires if any worker still serves an old certificate.
    aggregator: 'min',
    registers,
  });
  const rateLimitHits = new Counter({
    name: METRIC_NAMES.rateLimitHits,
    help: 'Requests refused by a rate limit',
    labelNames: ['limit'] as const,
    registers,
  });
  const rateLimitStoreFailures = new Counter({
    name: METRIC_NAMES.rateLimitStoreFailures,
    help: 'Rate-limit decisions taken while Redis was unreachable: fallback (local limiter), allowed (fail open), refused (fail closed)',
    labelNames: ['limit', 'outcome'] as const,
    registers,
  });
  const redisUp = new Gauge({ name: METRIC_NAMES.redisUp, help: '1 while the rate-limit Redis is connected', aggregator: 'min', registers });
  const jwksState = new Gauge({
    name: METRIC_NAMES.jwksState,
    help: 'JWKS state per provider: 1 for the current state (fresh, stale, empty), 0 for the others',
    labelNames: ['provider', 'state'] as const,
    // Across workers: 1 when any worker is in that state, so a stale or empty key set is never hidden by a sum.
    aggregator: 'max',
    registers,
  });

  const egressHosts = new Set<string>();
  const egressAttempt = bound2(egressAttempts);

  return {
    registry,
    requests(route, status, code, seconds) {
      requests.record(route, status, code, seconds);
    },
    jwtFailure: bound2(jwtFailures),
    authz: bound2(authzDecisions),
    egress(host, decision) {
      let destination = host;
      if (!egressHosts.has(host)) {
        if (egressHosts.size >= maxEgressDestinations) destination = OTHER_DESTINATION;
        else egressHosts.add(host);
      }
      egressAttempt(destination, decision);
    },
    certificateExpiry(name, notAfter) {
      certificateExpiry.labels(name).set(notAfter.getTime() / 1000);
    },
    rateLimitHit: bound1(rateLimitHits),
    rateLimitStoreFailure: bound2(rateLimitStoreFailures),
    redisUp(up) {
      redisUp.set(up ? 1 : 0);
    },
    jwksState(provider, state) {
      for (const s of JWKS_STATES) jwksState.labels(provider, s).set(s === state ? 1 : 0);
    },
  };
}

/** One route's request counts and durations, plain numbers until a scrape reads them. */
interface RouteRecord {
  /** `status code` → requests. */
  outcomes: Map<string, { status: string; code: string; count: number }>;
  /** Requests per duration bucket (not cumulative); the last slot is above the largest bound. */
  buckets: number[];
  sum: number;
  count: number;
}

type SampleValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * The request counter and duration histogram, kept by hand: prom-client's labelled `inc`/`observe` hash their
 * labels on every call (~3 % of the request path in the S1 profile). Here a request is a few Map lookups and
 * additions; scrapes read the numbers through the same `get()` contract prom-client's own metrics have, so the
 * text exposition and the cluster aggregation (AggregatorRegistry) see ordinary counters and histograms.
 */
class RequestMetrics {
  private readonly routes = new Map<string, RouteRecord>();

  readonly total = {
    name: METRIC_NAMES.requests,
    help: 'Ingress requests by route, response status and gateway code (GW_* or ok)',
    type: 'counter',
    aggregator: 'sum',
    get: async () => ({ ...this.total, values: this.totalValues() }),
    reset: () => this.routes.clear(),
  };

  readonly duration = {
    name: METRIC_NAMES.requestDuration,
    help: 'Ingress request duration, first byte in to last byte out',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ ...this.duration, values: this.durationValues() }),
    reset: () => this.routes.clear(),
  };

  record(route: string, status: number, code: string, seconds: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { outcomes: new Map(), buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
      this.routes.set(route, r);
    }
    const key = `${status} ${code}`;
    const outcome = r.outcomes.get(key);
    if (outcome) outcome.count++;
    else r.outcomes.set(key, { status: String(status), code, count: 1 });
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    r.buckets[bucket]!++;
    r.sum += seconds;
    r.count++;
  }

  private totalValues(): SampleValue[] {
    const values: SampleValue[] = [];
    for (const [route, r] of this.routes) {
      for (const { status, code, count } of r.outcomes.values()) values.push({ labels: { route, status, code }, value: count });
    }
    return values;
  }

  private durationValues(): SampleValue[] {
    const name = METRIC_NAMES.requestDuration;
    const values: SampleValue[] = [];
    for (const [route, r] of this.routes) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += r.buckets[i]!;
        values.push({ labels: { le, route }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf', route }, value: r.count, metricName: `${name}_bucket` },
        { labels: { route }, value: r.sum, metricName: `${name}_sum` },
        { labels: { route }, value: r.count, metricName: `${name}_count` },
      );
    }
    return values;
  }
}

/** A counter's children for one label, bound on first use. */
function bound1(counter: Counter<string>): (a: string) => void {
  const children = new Map<string, ReturnType<Counter<string>['labels']>>();
  return (a) => {
    let child = children.get(a);
    if (!child) {
      child = counter.labels(a);
      children.set(a, child);
    }
    child.inc();
  };
}

/** A counter's children for two labels, bound on first use. */
function bound2(counter: Counter<string>): (a: string, b: string) => void {
  const children = new Map<string, Map<string, ReturnType<Counter<string>['labels']>>>();
  return (a, b) => {
    let inner = children.get(a);
    if (!inner) {
      inner = new Map();
      children.set(a, inner);
    }
    let child = inner.get(b);
    if (!child) {
      child = counter.labels(a, b);
      inner.set(b, child);
    }
    child.inc();
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
