// The scenarios of issue #6 and the contract every peer implements. Every ingress peer exposes the same
// paths so one load generator command line fits all: /s1 plain upstream, /s2 ES256 JWT, /s2rs RS256 JWT,
// /s3 ES256 JWT + mTLS upstream.
import type { Material } from './material.js';
import type { Upstreams } from './upstream.js';

export const PEER_NAMES = ['portcullis', 'portcullis-base', 'haproxy', 'nginx', 'node-undici', 'squid'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export const SCENARIO_IDS = ['S1', 'HS', 'S2-ES256', 'S2-RS256', 'S3', 'S3-nocache', 'S4-tunnel', 'S4-new'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** wrk against the ingress port, or the CONNECT load generator against the egress port. */
  load: { kind: 'wrk'; path: string; tokens?: (m: Material) => string; connectionClose?: boolean } | { kind: 'connect'; newTunnelPerRequest: boolean };
  /** The peer ratios are computed against. */
  baseline: PeerName;
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
};

export interface PeerContext {
  material: Material;
  upstreams: Upstreams;
  /** Every peer writes one access-log line per request (to /dev/null) when true, as it would in production. */
  accessLog: boolean;
  /** The Node binary the Node peers (Portcullis, node-undici) run under: `--node PATH`, else the bench's own. */
  node: string;
}

export interface RunningPeer {
  pid: number;
  /** TLS listener serving the /s* paths (ingress peers). */
  ingressPort?: number;
  /** Plain-HTTP forward proxy port (egress peers). */
  egressPort?: number;
  stop(): Promise<void>;
}

export interface PeerDriver {
  name: PeerName;
  /** Debian packages the peer needs (empty when it only needs Node). */
  packages: readonly string[];
  /** Missing executables; the peer is skipped when any is. */
  missing(): string[];
  scenarios: readonly ScenarioId[];
  /** Cells where the peer does less work than the scenario says, shown next to its figure. */
  caveats?: Partial<Record<ScenarioId, string>>;
  start(ctx: PeerContext): Promise<RunningPeer>;
}
