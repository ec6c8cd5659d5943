// The endpoints of an upstream with more than one place to send to: a static list or a DNS name re-resolved on
// an interval, each endpoint with its own pool, and what is known of its health:
//   active checks   an HTTP GET of a path over the endpoint's own pool (so its TLS identity is checked like any
//                   request's), or a TCP connect; `unhealthyThreshold` failures in a row take it out,
//                   `healthyThreshold` passes bring it back (and end an ejection, as in Envoy).
//   passive checks  `consecutive5xx` failed answers in a row (5xx, connect failure, reset, timeout) eject it for
//                   `baseEjectionMs` × the times it was ejected, with at most `maxEjectionPercent` of the endpoints
//                   (always at least one) out at once. The multiplier falls back by one per ejection time spent
//                   without an ejection.
// DNS trust: an address from DNS is only where the gateway dials. Who answers is still the TLS identity of the
// upstream (its SPIFFE ID, else the URL's host name) on every connection, so a spoofed answer can make requests
// fail but cannot make the gateway talk to anything else. Unspecified, link-local (cloud metadata at
// 169.254.169.254), multicast and broadcast answers are dropped always, loopback unless `allowLoopback`.
import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { createBalancer, type Balanced, type Balancer, type BalancerPolicy } from './balancer.js';
import type { ResponseSink, UpstreamRequest } from './clients.js';

/** One endpoint's pool (HTTP/1.1) or session (h2). */
export interface Transport {
  dispatch(req: UpstreamRequest, sink: ResponseSink): Promise<void>;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface Endpoint extends Balanced {
  readonly host: string;
  readonly port: number;
  readonly transport: Transport;
  /** False after `unhealthyThreshold` failed active checks in a row. */
  healthy: boolean;
  checkStreak: number;
  /** An active check is running (a slow endpoint does not pile up checks). */
  checking: boolean;
  /** Failed answers in a row (passive). */
  errors: number;
  ejections: number;
  ejectedUntil: number;
}

export interface HealthCheckOptions {
  /** HTTP GET of this path answered 2xx; TCP connect when unset. */
  path?: string;
  /** The Host (h2: :authority) of the HTTP check: the upstream URL's, as requests carry the client's. */
  host: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export interface OutlierOptions {
  consecutive5xx: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
}

export interface DnsSource {
  name: string;
  port: number;
  refreshMs: number;
  allowLoopback: boolean;
  /** All addresses of a name; `dns.lookup` (the system resolver, as the kubelet's pods use) unless given. */
  lookup?: (name: string) => Promise<string[]>;
}

export interface EndpointEvents {
  /** The endpoint list changed (DNS) or an endpoint's health did. */
  changed?(): void;
  ejected?(endpoint: Endpoint): void;
  /** A DNS refresh failed; the previous endpoints stay. */
  resolveFailed?(err: unknown): void;
}

export interface EndpointSetOptions {
  static?: readonly { address: string; weight: number }[];
  dns?: DnsSource;
  policy: BalancerPolicy;
  panicThresholdPercent: number;
  healthCheck?: HealthCheckOptions;
  outlier: OutlierOptions;
  transport(host: string, port: number): Transport;
  events?: EndpointEvents;
}

export interface EndpointSet {
  readonly endpoints: readonly Endpoint[];
  /** Resolves once the first DNS answer is in (at once for a static list). */
  readonly ready: Promise<void>;
  /** `tried`: the endpoints a retried request already went to (see balancer.ts). */
  pick(hashKey: string | undefined, tried?: readonly Endpoint[]): Endpoint | undefined;
  /** The outcome of one request on `endpoint`, for passive health. */
  succeeded(endpoint: Endpoint): void;
  failed(endpoint: Endpoint): void;
  available(endpoint: Endpoint): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export function createEndpointSet(options: EndpointSetOptions): EndpointSet {
  const balancer: Balancer<Endpoint> = createBalancer(options.policy, options.panicThresholdPercent);
  const { outlier, events } = options;
  let endpoints: Endpoint[] = [];
  let closed = false;
  const timers: NodeJS.Timeout[] = [];
  const available = (e: Endpoint) => e.healthy && e.ejectedUntil <= Date.now();

  const newEndpoint = (host: string, port: number, weight: number): Endpoint => ({
    address: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    host,
    port,
    weight,
    active: 0,
    score: 0,
    transport: options.transport(host, port),
    healthy: true,
    checkStreak: 0,
    checking: false,
    errors: 0,
    ejections: 0,
    ejectedUntil: 0,
  });

  /** Keeps the endpoints (pools, health) of addresses still present; closes those of addresses gone. */
  const replace = (next: { host: string; port: number; weight: number }[]) => {
    const previous = new Map(endpoints.map((e) => [e.address, e]));
    endpoints = next.map((n) => {
      const kept = previous.get(net.isIPv6(n.host) ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`);
      if (kept) previous.delete(kept.address);
      return kept ?? newEndpoint(n.host, n.port, n.weight);
    });
    for (const gone of previous.values()) void gone.transport.close();
    balancer.rebuild(endpoints);
    events?.changed?.();
  };

  let ready = Promise.resolve();
  if (options.static) replace(options.static.map(({ address, weight }) => ({ ...splitAddress(address), weight })));
  if (options.dns) {
    const source = options.dns;
    const refresh = async () => {
      try {
        const addresses = dialableAnswers(await (source.lookup ?? systemLookup)(source.name), source.allowLoopback);
        if (!closed) replace(addresses.map((host) => ({ host, port: source.port, weight: 1 })));
      } catch (err) {
        events?.resolveFailed?.(err);
      }
    };
    ready = refresh();
    timers.push(setInterval(() => void refresh(), source.refreshMs).unref());
  }
  if (options.healthCheck) {
    const check = options.healthCheck;
    timers.push(setInterval(() => endpoints.forEach((e) => void runCheck(e, check)), check.intervalMs).unref());
  }

  const runCheck = async (e: Endpoint, check: HealthCheckOptions) => {
    if (e.checking) return;
    e.checking = true;
    const passed = await probe(e, check);
    e.checking = false;
    if (closed) return;
    // A streak counts passes when positive, failures when negative.
    e.checkStreak = passed ? Math.max(e.checkStreak, 0) + 1 : Math.min(e.checkStreak, 0) - 1;
    if (!e.healthy && e.checkStreak >= check.healthyThreshold) {
      e.healthy = true;
      e.ejectedUntil = 0;
      e.errors = 0;
      events?.changed?.();
    } else if (e.healthy && -e.checkStreak >= check.unhealthyThreshold) {
      e.healthy = false;
      events?.changed?.();
    }
  };

  const eject = (e: Endpoint) => {
    const now = Date.now();
    let out = 0;
    for (const other of endpoints) if (other.ejectedUntil > now) out++;
    if (out >= Math.max(1, Math.floor((endpoints.length * outlier.maxEjectionPercent) / 100))) return;
    // The multiplier decays by one per ejection time spent in since the last ejection ended.
    const quietFor = e.ejectedUntil === 0 ? 0 : now - e.ejectedUntil;
    e.ejections = Math.max(0, e.ejections - Math.floor(quietFor / outlier.baseEjectionMs)) + 1;
    e.ejectedUntil = now + outlier.baseEjectionMs * e.ejections;
    e.errors = 0;
    events?.ejected?.(e);
    events?.changed?.();
  };

  return {
    get endpoints() {
      return endpoints;
    },
    get ready() {
      return ready;
    },
    pick: (hashKey, tried) => balancer.pick(endpoints, available, hashKey, tried),
    available,
    succeeded(e) {
      e.errors = 0;
    },
    failed(e) {
      if (++e.errors >= outlier.consecutive5xx && e.ejectedUntil <= Date.now()) eject(e);
    },
    async close() {
      closed = true;
      timers.forEach(clearInterval);
      await Promise.all(endpoints.map((e) => e.transport.close()));
    },
    async destroy() {
      closed = true;
      timers.forEach(clearInterval);
      await Promise.all(endpoints.map((e) => e.transport.destroy()));
    },
  };
}

async function probe(e: Endpoint, check: HealthCheckOptions): Promise<boolean> {
  const signal = AbortSignal.timeout(check.timeoutMs);
  if (check.path === undefined) return tcpConnects(e.host, e.port, signal);
  let status = 0;
  try {
    await e.transport.dispatch(
      { method: 'GET', path: check.path, headers: { host: check.host, 'user-agent': 'portcullis-health-check' }, body: null, timeoutMs: check.timeoutMs, signal },
      { start: (s) => (status = s), data: () => {}, end: () => {} },
    );
    return status >= 200 && status < 300;
  } catch {
    return false;
  }
}

function tcpConnects(host: string, port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function systemLookup(name: string): Promise<string[]> {
  const answers = await dns.promises.lookup(name, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

/** The answers the gateway may dial, each once (see the DNS trust rules at the top). */
export function dialableAnswers(addresses: readonly string[], allowLoopback: boolean): string[] {
  const kept = new Set<string>();
  for (const address of addresses) {
    if (!ipaddr.isValid(address)) continue;
    const parsed = ipaddr.process(address);
    const range = parsed.range();
    if (range === 'loopback' ? !allowLoopback : REFUSED_RANGES.has(range)) continue;
    kept.add(parsed.toString());
  }
  return [...kept];
}

const REFUSED_RANGES = new Set(['unspecified', 'linkLocal', 'multicast', 'broadcast']);

/** `host:port` or `[v6]:port` (the schema has checked the shape). */
function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}
