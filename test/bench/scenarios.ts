// The scenarios of issue #6 and the contract every peer implements. Every ingress peer exposes the same
// paths so one load generator command line fits all: /s1 plain upstream, /s2 ES256 JWT, /s2rs RS256 JWT,
// /s3 ES256 JWT + mTLS upstream.
import type { Material } from './material.js';
import type { Upstreams } from './upstream.js';

export const PEER_NAMES = ['portcullis', 'portcullis-base', 'haproxy', 'nginx', 'node-undici', 'fastify', 'squid'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export const SCENARIO_IDS = [
  'S1',
  'HS',
  'S2-ES256',
  'S2-RS256',
  'S3',
  'S3-nocache',
  'S4-tunnel',
  'S4-new',
  'S1-h2',
  'S3-h2',
  'S1-3ep',
  'S3-traceoff',
  'S3-trace1',
  'S3-trace100',
  'S4-auditoff',
  'S4-audit',
  'S4-new-auditoff',
  'S4-new-audit',
] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

/**
 * A gateway-wide setting a scenario needs (tracing, the audit trail): a peer that runs the scenario starts one more
 * instance with it, and the scenario is compared with the same peer's figure in the scenario without it. `twin`
 * (for tracing) and `auditoff` (for the audit trail) are those comparisons' baselines: one more instance each with the
 * plain config, loaded exactly like the variant they are compared with (the main instance also serves every other
 * scenario, so its heap and caches differ; so would one instance serving both S3 and S4).
 */
export type GatewayVariant = 'twin' | 'trace1' | 'trace100' | 'auditoff' | 'audit';

/**
 * h2load's load: 4 processes × 4 connections × 4 streams (HTTP/2 over TLS, ALPN h2) = 64 requests in flight, as wrk's
 * 64 connections, so every peer's 64 upstream connections suffice. With 640 in flight (-c64 -m10) HAProxy and nginx
 * opened an upstream mTLS connection per extra request and the run measured that churn.
 */
export const H2LOAD = { processes: 4, connections: 4, streams: 4 } as const;

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** wrk against the ingress port, or the CONNECT load generator against the egress port. */
  load:
    | { kind: 'wrk'; path: string; tokens?: (m: Material) => string; connectionClose?: boolean }
    | { kind: 'connect'; newTunnelPerRequest: boolean }
    /** h2load against the peer's HTTP/2 port; with `jwt`, each h2load process sends one of the first tokens. */
    | { kind: 'h2load'; path: string; jwt: boolean };
  /** The peer ratios are computed against. */
  baseline: PeerName;
  /** The baseline's figure comes from this scenario (same rounds) instead of this one: S3-trace1 against S3. */
  baselineScenario?: ScenarioId;
  variant?: GatewayVariant;
}

export const SCENARIOS: Record<ScenarioId, Scenario> = {
  S1: { id: 'S1', title: 'TLS terminate + proxy to HTTP upstream', load: { kind: 'wrk', path: '/s1' }, baseline: 'haproxy' },
  HS: {
    id: 'HS',
    title: 'full TLS handshake per request (Connection: close)',
    load: { kind: 'wrk', path: '/s1', connectionClose: true },
    baseline: 'haproxy',
  },
  'S2-ES256': {
    id: 'S2-ES256',
    title: 'S1 + JWT ES256 verify (256 distinct tokens)',
    load: { kind: 'wrk', path: '/s2', tokens: (m) => m.jwt.ES256.tokens },
    baseline: 'haproxy',
  },
  'S2-RS256': {
    id: 'S2-RS256',
    title: 'S1 + JWT RS256 verify (256 distinct tokens)',
    load: { kind: 'wrk', path: '/s2rs', tokens: (m) => m.jwt.RS256.tokens },
    baseline: 'haproxy',
  },
  S3: {
    id: 'S3',
    title: 'S2 ES256 + authz + mTLS re-origination to an upstream demanding client certs',
    load: { kind: 'wrk', path: '/s3', tokens: (m) => m.jwt.ES256.tokens },
    baseline: 'haproxy',
  },
  'S3-nocache': {
    id: 'S3-nocache',
    title: 'S3 with 4,096 distinct tokens cycled: more than the verified-token cache holds, so every request verifies',
    load: { kind: 'wrk', path: '/s3', tokens: (m) => m.nocacheTokens },
    baseline: 'haproxy',
  },
  'S4-tunnel': {
    id: 'S4-tunnel',
    title: 'egress CONNECT + TLS to an allowlisted host, requests through kept-alive tunnels',
    load: { kind: 'connect', newTunnelPerRequest: false },
    baseline: 'squid',
  },
  'S4-new': {
    id: 'S4-new',
    title: 'egress: a new CONNECT tunnel (and TLS) per request',
    load: { kind: 'connect', newTunnelPerRequest: true },
    baseline: 'squid',
  },
  'S1-h2': { id: 'S1-h2', title: 'S1 over HTTP/2 (TLS ALPN h2), h2load', load: { kind: 'h2load', path: '/s1', jwt: false }, baseline: 'haproxy' },
  'S3-h2': {
    id: 'S3-h2',
    title: `S3 over HTTP/2 (TLS ALPN h2), h2load; ${H2LOAD.processes} tokens, one per h2load process (h2load sends a fixed header set), so the verified-token cache always hits`,
    load: { kind: 'h2load', path: '/s3', jwt: true },
    baseline: 'haproxy',
  },
  'S1-3ep': {
    id: 'S1-3ep',
    title: 'S1 to an upstream of three endpoints (three ports), least request (Portcullis leastRequest, HAProxy leastconn, nginx least_conn)',
    load: { kind: 'wrk', path: '/s1-3ep' },
    baseline: 'haproxy',
  },
  'S3-traceoff': {
    id: 'S3-traceoff',
    title: 'S3 on a gateway process of its own without tracing, as the tracing ones are: the baseline of S3-trace1 and S3-trace100',
    load: { kind: 'wrk', path: '/s3', tokens: (m) => m.jwt.ES256.tokens },
    baseline: 'portcullis',
    baselineScenario: 'S3',
    variant: 'twin',
  },
  'S3-trace1': {
    id: 'S3-trace1',
    title: 'S3 with tracing on, 1 % of traces sampled, OTLP/HTTP export to a sink in the bench process',
    load: { kind: 'wrk', path: '/s3', tokens: (m) => m.jwt.ES256.tokens },
    baseline: 'portcullis',
    baselineScenario: 'S3-traceoff',
    variant: 'trace1',
  },
  'S3-trace100': {
    id: 'S3-trace100',
    title: 'S3 with tracing on, every trace sampled, OTLP/HTTP export to a sink in the bench process',
    load: { kind: 'wrk', path: '/s3', tokens: (m) => m.jwt.ES256.tokens },
    baseline: 'portcullis',
    baselineScenario: 'S3-traceoff',
    variant: 'trace100',
  },
  'S4-auditoff': {
    id: 'S4-auditoff',
    title: 'S4-tunnel on a gateway process of its own without the audit trail, as the audit one is: the baseline of S4-audit',
    load: { kind: 'connect', newTunnelPerRequest: false },
    baseline: 'portcullis',
    baselineScenario: 'S4-tunnel',
    variant: 'auditoff',
  },
  'S4-audit': {
    id: 'S4-audit',
    title: 'S4-tunnel with the tamper-evident audit trail on (hash chain, signed checkpoints every 1,000 records)',
    load: { kind: 'connect', newTunnelPerRequest: false },
    baseline: 'portcullis',
    baselineScenario: 'S4-auditoff',
    variant: 'audit',
  },
  'S4-new-auditoff': {
    id: 'S4-new-auditoff',
    title: 'S4-new on the gateway process of S4-auditoff (no audit trail): the baseline of S4-new-audit',
    load: { kind: 'connect', newTunnelPerRequest: true },
    baseline: 'portcullis',
    baselineScenario: 'S4-new',
    variant: 'auditoff',
  },
  'S4-new-audit': {
    id: 'S4-new-audit',
    title: 'S4-new with the audit trail on: one audit record per tunnel',
    load: { kind: 'connect', newTunnelPerRequest: true },
    baseline: 'portcullis',
    baselineScenario: 'S4-new-auditoff',
    variant: 'audit',
  },
};

export interface PeerContext {
  material: Material;
  upstreams: Upstreams;
  /** Every peer writes one access-log line per request (to /dev/null) when true, as it would in production. */
  accessLog: boolean;
  /** The Node binary the Node peers (Portcullis, node-undici) run under: `--node PATH`, else the bench's own. */
  node: string;
  /** The OTLP/HTTP traces URL of the bench's sink, when a tracing scenario runs. */
  otlpUrl?: string;
}

export interface RunningPeer {
  pid: number;
  /** TLS listener serving the /s* paths (ingress peers). */
  ingressPort?: number;
  /** Plain-HTTP forward proxy port (egress peers). */
  egressPort?: number;
  /** TLS listener offering ALPN h2 (the S*-h2 scenarios); may be the ingress port. */
  h2Port?: number;
  stop(): Promise<void>;
}

export interface PeerDriver {
  name: PeerName;
  /** Debian packages the peer needs (empty when it only needs Node). */
  packages: readonly string[];
  /** npm packages the peer needs beyond the project's own (named when missing; the bench never installs). */
  npmPackages?: readonly string[];
  /** Missing executables; the peer is skipped when any is. */
  missing(): string[];
  scenarios: readonly ScenarioId[];
  /** Cells where the peer does less work than the scenario says, shown next to its figure. */
  caveats?: Partial<Record<ScenarioId, string>>;
  /** `variant`: the gateway-wide setting of a scenario (only peers that list such a scenario get one). */
  start(ctx: PeerContext, variant?: GatewayVariant): Promise<RunningPeer>;
}

/** The scenario whose figures a scenario is finally compared with: S3-trace1 → S3-traceoff → S3. */
function comparisonRoot(id: ScenarioId): ScenarioId {
  let root = id;
  for (let next = SCENARIOS[root].baselineScenario; next; next = SCENARIOS[root].baselineScenario) root = next;
  return root;
}

/**
 * One round's measurement order. Measurements compared with each other (the peers of a scenario, and a variant with
 * its baseline scenario) run back to back, as one group; the group's order turns by one each round, and every other
 * cycle of turns runs backwards, so over twice as many rounds as a group has members each one runs before each other
 * one as often as after it (a new-tunnel scenario leaves sockets in TIME_WAIT for the next, say). Groups keep the
 * order the scenarios were asked in.
 */
export function roundOrder<T extends { scenario: ScenarioId }>(items: readonly T[], round: number): T[] {
  return roundGroups(items, round).flat();
}

/** The groups of `roundOrder`, each in its order: what `--paired` loads at once. */
export function roundGroups<T extends { scenario: ScenarioId }>(items: readonly T[], round: number): T[][] {
  const groups = new Map<ScenarioId, T[]>();
  for (const item of items) {
    const root = comparisonRoot(item.scenario);
    groups.set(root, [...(groups.get(root) ?? []), item]);
  }
  return [...groups.values()].map((group) => {
    const turned = group.map((_, i) => group[(i + round) % group.length]!);
    return Math.floor((round - 1) / group.length) % 2 ? turned.reverse() : turned;
  });
}
