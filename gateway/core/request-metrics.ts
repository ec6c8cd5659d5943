// The ingress request counters, duration histograms and byte counters, per route and per upstream, kept by hand:
// prom-client's labelled `inc`/`observe` hash their labels on every call (~3 % of the request path in the S1
// profile). Here a request is a few Map lookups and additions, with no allocation once a series has seen its
// status and code; scrapes read the numbers through the same `get()` contract prom-client's own metrics have, so the
// text exposition and the cluster aggregation (AggregatorRegistry) see ordinary counters and histograms.

/** A proxy adds well under a millisecond when healthy; the top buckets cover slow uploads and long polls. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const REQUEST_METRIC_NAMES = {
  requests: 'portcullis_requests_total',
  requestDuration: 'portcullis_request_duration_seconds',
  requestBytes: 'portcullis_request_bytes_total',
  responseBytes: 'portcullis_response_bytes_total',
} as const;

export const UPSTREAM_METRIC_NAMES = {
  upstreamRequests: 'portcullis_upstream_requests_total',
  upstreamRequestDuration: 'portcullis_upstream_request_duration_seconds',
  upstreamSentBytes: 'portcullis_upstream_sent_bytes_total',
  upstreamReceivedBytes: 'portcullis_upstream_received_bytes_total',
} as const;

/**
 * The durations are kept per status class, so that fast refusals and slow answers are not one distribution. Index:
 * the status' hundreds; anything outside 100–599 (no status at all) is `other`.
 */
export const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

function statusClass(status: number): number {
  return status >= 100 && status < 600 ? Math.trunc(status / 100) : 0;
}

/** One duration histogram: requests per bucket (not cumulative; the last slot is above the largest bound), sum. */
class Durations {
  readonly buckets = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;
}

/** One label value's (a route's, an upstream's) counts, durations and bytes: plain numbers until a scrape reads them. */
export class RequestSeries {
  /** status → code → requests. Nested, so counting builds no key string. */
  readonly outcomes = new Map<number, Map<string, number>>();
  /** By status class (STATUS_CLASSES' index), made on the class' first request. */
  readonly durations: (Durations | undefined)[] = STATUS_CLASSES.map(() => undefined);
  count = 0;
  bytesIn = 0;
  bytesOut = 0;

  record(status: number, code: string, seconds: number, bytesIn: number, bytesOut: number): void {
    let codes = this.outcomes.get(status);
    if (!codes) {
      codes = new Map();
      this.outcomes.set(status, codes);
    }
    codes.set(code, (codes.get(code) ?? 0) + 1);
    const cls = statusClass(status);
    const d = (this.durations[cls] ??= new Durations());
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    d.buckets[bucket]!++;
    d.sum += seconds;
    d.count++;
    this.count++;
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  clear(): void {
    this.outcomes.clear();
    this.durations.fill(undefined);
    this.count = this.bytesIn = this.bytesOut = 0;
  }
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

/** The four metrics of a label, for their names and help texts. */
type SeriesField = 'requests' | 'duration' | 'requestBytes' | 'responseBytes';

/** The series of one label (`route`, `upstream`): a `RequestSeries` per value, made on first use and kept. */
export class RequestMetrics {
  private readonly series = new Map<string, RequestSeries>();
  readonly metrics: readonly CollectedMetric[];

  constructor(
    private readonly label: string,
    names: Readonly<Record<SeriesField, string>>,
    help: Readonly<Record<SeriesField, string>>,
  ) {
    this.metrics = [
      this.metric(names.requests, help.requests, 'counter', () => this.totalValues()),
      this.metric(names.duration, help.duration, 'histogram', () => this.durationValues(names.duration)),
      this.metric(names.requestBytes, help.requestBytes, 'counter', () => this.byteValues('bytesIn')),
      this.metric(names.responseBytes, help.responseBytes, 'counter', () => this.byteValues('bytesOut')),
    ];
  }

  /** The value's series, to be kept by the caller (compiled once) or found again here per request. */
  child(value: string): RequestSeries {
    let s = this.series.get(value);
    if (!s) {
      s = new RequestSeries();
      this.series.set(value, s);
    }
    return s;
  }

  private metric(name: string, help: string, type: CollectedMetric['type'], values: () => SampleValue[]): CollectedMetric {
    const head = { name, help, type, aggregator: 'sum' } as const;
    // Cleared in place, never dropped: callers hold on to their series.
    return { ...head, get: async () => ({ ...head, values: values() }), reset: () => this.series.forEach((s) => s.clear()) };
  }

  private totalValues(): SampleValue[] {
    const values: SampleValue[] = [];
    for (const [value, s] of this.series) {
      for (const [status, codes] of s.outcomes) {
        for (const [code, count] of codes) values.push({ labels: { [this.label]: value, status, code }, value: count });
      }
    }
    return values;
  }

  private byteValues(field: 'bytesIn' | 'bytesOut'): SampleValue[] {
    return [...this.series].filter(([, s]) => s.count > 0).map(([value, s]) => ({ labels: { [this.label]: value }, value: s[field] }));
  }

  private durationValues(name: string): SampleValue[] {
    const values: SampleValue[] = [];
    for (const [value, s] of this.series) {
      // A series made at compile time (an upstream no request has reached yet) has no class until its first request.
      s.durations.forEach((d, cls) => {
        if (!d) return;
        const labels = { [this.label]: value, status_class: STATUS_CLASSES[cls]! };
        let cumulative = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += d.buckets[i]!;
          values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${name}_bucket` });
        });
        values.push(
          { labels: { le: '+Inf', ...labels }, value: d.count, metricName: `${name}_bucket` },
          { labels, value: d.sum, metricName: `${name}_sum` },
          { labels, value: d.count, metricName: `${name}_count` },
        );
      });
    }
    return values;
  }
}
