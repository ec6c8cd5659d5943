// The ingress request counter, duration histogram and byte counters, kept by hand: prom-client's labelled
// `inc`/`observe` hash their labels on every call (~3 % of the request path in the S1 profile). Here a request is
// a few Map lookups and additions; scrapes read the numbers through the same `get()` contract prom-client's own
// metrics have, so the text exposition and the cluster aggregation (AggregatorRegistry) see ordinary counters
// and histograms.

/** A proxy adds well under a millisecond when healthy; the top buckets cover slow uploads and long polls. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const REQUEST_METRIC_NAMES = {
  requests: 'portcullis_requests_total',
  requestDuration: 'portcullis_request_duration_seconds',
  requestBytes: 'portcullis_request_bytes_total',
  responseBytes: 'portcullis_response_bytes_total',
} as const;

/** One route's request counts, durations and bytes, plain numbers until a scrape reads them. */
interface RouteRecord {
  /** `status code` → requests. */
  outcomes: Map<string, { status: string; code: string; count: number }>;
  /** Requests per duration bucket (not cumulative); the last slot is above the largest bound. */
  buckets: number[];
  sum: number;
  count: number;
  bytesIn: number;
  bytesOut: number;
}

type SampleValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/** What the registry reads of a metric (prom-client's `registerMetric` contract). */
export interface CollectedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: SampleValue[] }>;
  reset(): void;
}

export class RequestMetrics {
  private readonly routes = new Map<string, RouteRecord>();

  readonly metrics: readonly CollectedMetric[] = [
    this.metric(REQUEST_METRIC_NAMES.requests, 'Ingress requests by route, response status and gateway code (GW_* or ok)', 'counter', () =>
      this.totalValues(),
    ),
    this.metric(REQUEST_METRIC_NAMES.requestDuration, 'Ingress request duration, first byte in to last byte out', 'histogram', () =>
      this.durationValues(),
    ),
    this.metric(REQUEST_METRIC_NAMES.requestBytes, 'Ingress request body bytes received from clients, by route', 'counter', () =>
      this.byteValues('bytesIn'),
    ),
    this.metric(REQUEST_METRIC_NAMES.responseBytes, 'Ingress response body bytes sent to clients, by route', 'counter', () =>
      this.byteValues('bytesOut'),
    ),
  ];

  record(route: string, status: number, code: string, seconds: number, bytesIn: number, bytesOut: number): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { outcomes: new Map(), buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0, bytesIn: 0, bytesOut: 0 };
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
    r.bytesIn += bytesIn;
    r.bytesOut += bytesOut;
  }

  private metric(name: string, help: string, type: CollectedMetric['type'], values: () => SampleValue[]): CollectedMetric {
    const head = { name, help, type, aggregator: 'sum' } as const;
    return { ...head, get: async () => ({ ...head, values: values() }), reset: () => this.routes.clear() };
  }

  private totalValues(): SampleValue[] {
    const values: SampleValue[] = [];
    for (const [route, r] of this.routes) {
      for (const { status, code, count } of r.outcomes.values()) values.push({ labels: { route, status, code }, value: count });
    }
    return values;
  }

  private byteValues(field: 'bytesIn' | 'bytesOut'): SampleValue[] {
    return [...this.routes].map(([route, r]) => ({ labels: { route }, value: r[field] }));
  }

  private durationValues(): SampleValue[] {
    const name = REQUEST_METRIC_NAMES.requestDuration;
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
