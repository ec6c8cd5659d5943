// Portcullis, started through its real CLI with a generated config file: the compiled build when
// `npm run build` succeeded (realistic figures), else the TypeScript sources through tsx.
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { AUDIENCE, EGRESS_HOST, ISSUER, SERVER_NAME, TRUST_DOMAIN, UPSTREAM_SPIFFE_ID, type Alg } from '../material.js';
import { PROXY_CPUS, freePort, pinned, start, waitForPort } from '../proc.js';
import type { GatewayVariant, PeerContext, PeerDriver, RunningPeer, ScenarioId } from '../scenarios.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type GatewayBuild = 'dist' | 'tsx';

/** `recent`: the features an older checkout (`--base`) may lack (S1-3ep's endpoints, per-source tunnel limits) are configured. */
export function portcullisConfig(ctx: PeerContext, ports: { ingress: number; egress: number; admin: number }, recent = true, variant?: GatewayVariant): Record<string, unknown> {
  const { material, upstreams } = ctx;
  // The h2 scenarios keep 640 requests in flight over 64 connections; the default queue (256) would answer the rest 503,
  // a protection the other peers are not configured with.
  const pool = { connections: 64, maxPendingRequests: 1024 };
  const provider = (name: string, alg: Alg) => ({
    name,
    issuer: ISSUER,
    audiences: [AUDIENCE],
    jwks: { keys: [material.jwt[alg].jwk] },
    algorithms: [alg],
  });
  return {
    version: 'v1',
    log: { level: ctx.accessLog ? 'info' : 'warn' },
    // Its own admin port: several gateways run at once (variants, portcullis-base, other benches on the machine).
    admin: { port: ports.admin },
    mesh: { trustDomain: TRUST_DOMAIN, svid: { cert: material.svid.cert, key: material.svid.key }, bundle: material.ca },
    listeners: [
      {
        name: 'edge',
        address: '127.0.0.1',
        port: ports.ingress,
        hosts: [
          {
            name: 'bench',
            hostnames: [SERVER_NAME],
            tls: { mode: 'terminate', minVersion: 'TLSv1.3', certificate: { cert: material.listener.cert, key: material.listener.key } },
          },
        ],
      },
    ],
    jwtProviders: [provider('es', 'ES256'), provider('rs', 'RS256')],
    upstreams: [
      { name: 'plain', url: `http://127.0.0.1:${upstreams.httpPort}`, ...pool },
      { name: 'mtls', url: `https://127.0.0.1:${upstreams.mtlsPort}`, tls: { spiffeId: UPSTREAM_SPIFFE_ID }, ...pool },
      ...(recent
        ? [
            {
              name: 'plain3',
              url: `http://127.0.0.1:${upstreams.httpPort}`,
              endpoints: upstreams.endpointPorts.map((p) => ({ address: `127.0.0.1:${p}` })),
              loadBalancer: { policy: 'leastRequest' },
              ...pool,
            },
          ]
        : []),
    ],
    routes: [
      { name: 's1', match: { path: { exact: '/s1' } }, upstream: 'plain' },
      ...(recent ? [{ name: 's1-3ep', match: { path: { exact: '/s1-3ep' } }, upstream: 'plain3' }] : []),
      { name: 's2', match: { path: { exact: '/s2' } }, upstream: 'plain', jwtProviders: ['es'] },
      { name: 's2rs', match: { path: { exact: '/s2rs' } }, upstream: 'plain', jwtProviders: ['rs'] },
      { name: 's3', match: { path: { exact: '/s3' } }, upstream: 'mtls', jwtProviders: ['es'] },
    ],
    policies: [
      { name: 'public', action: 'ALLOW', routes: recent ? ['s1', 's1-3ep'] : ['s1'], rules: [{}] },
      { name: 'signed-in', action: 'ALLOW', routes: ['s2', 's2rs', 's3'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
    ],
    egress: {
      listener: { address: '127.0.0.1', port: ports.egress },
      allow: [{ name: 'bench', identities: ['anonymous'], hosts: [EGRESS_HOST], ports: [upstreams.egressPort] }],
      staticHosts: [{ host: EGRESS_HOST, addresses: ['127.0.0.1'] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
      // Every load-generator worker is the same anonymous source: as before per-source limits, only the identity's.
      ...(recent ? { limits: { maxTunnelsPerSource: 256 } } : {}),
    },
    ...variantConfig(ctx, ports.ingress, variant),
  };
}

/** Tracing at 1 % or 100 % to the bench's OTLP sink, or the audit trail with signed checkpoints; `twin` and `auditoff`: none of them. */
function variantConfig(ctx: PeerContext, id: number, variant: GatewayVariant | undefined): Record<string, unknown> {
  if (variant === 'trace1' || variant === 'trace100') {
    if (!ctx.otlpUrl) throw new Error('tracing scenario without the OTLP sink');
    return { tracing: { enabled: true, endpoint: ctx.otlpUrl, samplingRatio: variant === 'trace1' ? 0.01 : 1, serviceName: 'portcullis-bench' } };
  }
  if (variant === 'audit') {
    const { privateKey } = generateKeyPairSync('ed25519');
    const keyFile = ctx.material.write(`audit-key-${id}.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const dir = path.join(ctx.material.dir, `audit-${id}`);
    return { audit: { file: path.join(dir, 'audit.jsonl'), checkpoints: { file: path.join(dir, 'checkpoints.jsonl'), keyFile } } };
  }
  return {};
}

/** The real CLI: compiled, or the sources through tsx when the build is unavailable. `root`: the checkout. */
export function gatewayCommand(build: GatewayBuild, root = ROOT, node = process.execPath): string[] {
  return build === 'dist' ? [node, path.join(root, 'dist/gateway/cli.js')] : [node, '--import', 'tsx', path.join(root, 'gateway/cli.ts')];
}

export interface GatewayRun {
  nodeFlags?: readonly string[];
  /** Added to the gateway's environment (e.g. glibc's MALLOC_ARENA_MAX). */
  env?: Readonly<Record<string, string>>;
  /** > 1 runs the multi-process mode (`run --workers N`); its CPU is the whole process tree's. */
  workers?: number;
  /** The checkout to run (default this one): another one's compiled build is the `portcullis-base` peer. */
  root?: string;
  variant?: GatewayVariant;
}

export async function startPortcullis(ctx: PeerContext, build: GatewayBuild, run: GatewayRun = {}): Promise<RunningPeer> {
  const { nodeFlags = [], env, workers = 1, root = ROOT, variant } = run;
  const ports = { ingress: await freePort(), egress: await freePort(), admin: await freePort() };
  const file = ctx.material.write(`portcullis-${ports.ingress}.yaml`, stringify(portcullisConfig(ctx, ports, root === ROOT, variant)));
  const [node, ...rest] = gatewayCommand(build, root, ctx.node);
  const proc = start('portcullis', pinned(PROXY_CPUS, [node!, ...nodeFlags, ...rest, 'run', '-c', file, ...(workers > 1 ? ['--workers', String(workers)] : [])]), {
    cwd: root,
    ...(env ? { env: { ...process.env, ...env } } : {}),
    stdoutFile: '/dev/null',
    // --cpu-prof writes its profile on exit, which takes seconds after a loaded run.
    killAfterMs: nodeFlags.length ? 60_000 : 5000,
  });
  await waitForPort(ports.ingress, proc);
  await waitForPort(ports.egress, proc);
  // The terminating listener offers h2 and http/1.1 by ALPN on the same port.
  return { pid: proc.child.pid!, ingressPort: ports.ingress, egressPort: ports.egress, h2Port: ports.ingress, stop: proc.stop };
}

/**
 * This checkout's gateway, or with `baseRoot` another checkout's compiled build as the peer `portcullis-base`:
 * two builds measured in the same interleaved rounds, where separate runs differ by more than a small change.
 */
export function portcullisDriver(build: GatewayBuild, workers = 1, baseRoot?: string): PeerDriver {
  const root = baseRoot ?? ROOT;
  const compiled = path.join(root, 'dist/gateway/cli.js');
  const runs = baseRoot ? 'dist' : build;
  return {
    name: baseRoot ? 'portcullis-base' : 'portcullis',
    packages: [],
    missing: () => (runs === 'dist' && !fs.existsSync(compiled) ? [compiled] : []),
    // A base checkout runs them all too (its config must know endpoints, tracing and the audit trail: any since 2026-11-28).
    scenarios: [
      ...['S1', 'HS', 'S2-ES256', 'S2-RS256', 'S3', 'S3-nocache', 'S4-tunnel', 'S4-new', 'S1-h2', 'S3-h2', 'S1-3ep'],
      ...['S3-traceoff', 'S3-trace1', 'S3-trace100', 'S4-auditoff', 'S4-audit', 'S4-new-auditoff', 'S4-new-audit'],
    ] as ScenarioId[],
    start: (ctx, variant) => startPortcullis(ctx, runs, { workers, root, ...(variant ? { variant } : {}) }),
  };
}
