// The process's own metrics on a gateway's registry: prom-client's default Node metrics (CPU, memory, file
// descriptors, heap spaces, event-loop delay from perf_hooks.monitorEventLoopDelay), minus what `promtool check
// metrics` refuses and with a GC histogram that counts every collection, plus the build info. Nothing here runs
// per request: the event-loop monitor is one libuv timer, GC entries arrive in batches, the rest is read at scrape.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

export const PROCESS_METRIC_NAMES = {
  buildInfo: 'portcullis_build_info',
  gcDuration: 'nodejs_gc_duration_seconds',
} as const;

/**
 * Gauges prom-client names `*_total`, which Prometheus reserves for counters (promtool: "non-counter metrics should
 * not have _total suffix"). Each equals the sum over its per-type twin (`nodejs_active_handles` by `type`, …),
 * which stays.
 */
const TOTAL_NAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** GC pauses: scavenges take well under a millisecond, a major collection of a large heap can take a second. */
const GC_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const GC_KINDS = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

/** The version in the package.json above this file: two levels up from the sources, three from `dist/`. */
function packageVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'portcullis' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

export const PORTCULLIS_VERSION = packageVersion();

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of TOTAL_NAMED_GAUGES) registry.removeSingleMetric(name);
  registerGcHistogram(registry);
  new Gauge({
    name: PROCESS_METRIC_NAMES.buildInfo,
    help: 'Always 1; the labels name the Portcullis version and the Node.js version running it',
    labelNames: ['version', 'node'] as const,
    // Across workers: every worker runs the same build.
    aggregator: 'first',
    registers: [registry],
  })
    .labels(PORTCULLIS_VERSION, process.versions.node)
    .set(1);
}

/**
 * prom-client's GC histogram observes only the first entry of each batch the PerformanceObserver delivers, and
 * several collections often land in one batch (measured: 26 of 55 counted on Node 20, 12 of 20 on Node 24). This
 * one, under the same name, counts each. prom-client's own observer still runs, into a histogram no registry reads.
 */
function registerGcHistogram(registry: Registry): void {
  registry.removeSingleMetric(PROCESS_METRIC_NAMES.gcDuration);
  const histogram = new Histogram({
    name: PROCESS_METRIC_NAMES.gcDuration,
    help: 'Garbage collection pauses by kind (minor, major, incremental, weakcb), in seconds',
    labelNames: ['kind'] as const,
    buckets: GC_BUCKETS,
    registers: [registry],
  });
  const byKind = new Map([...GC_KINDS].map(([code, kind]) => [code, histogram.labels(kind)]));
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // `detail.kind` since Node 16 (DEP0152); @types/node 20 does not declare it.
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1;
      byKind.get(kind)?.observe(entry.duration / 1000);
    }
  }).observe({ entryTypes: ['gc'] });
}

