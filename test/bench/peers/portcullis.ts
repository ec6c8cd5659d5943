// Portcullis, started through its real CLI with a generated config file: the compiled build when
// `npm run build` succeeded (realistic figures), else the TypeScript sources through tsx.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { AUDIENCE, EGRESS_HOST, ISSUER, SERVER_NAME, TRUST_DOMAIN, UPSTREAM_SPIFFE_ID, type Alg } from '../material.js';
import { PROXY_CPUS, freePort, pinned, start, waitForPort } from '../proc.js';
import type { PeerContext, PeerDriver, RunningPeer } from '../scenarios.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMPILED_CLI = path.join(ROOT, 'dist/gateway/cli.js');
const SOURCE_CLI = path.join(ROOT, 'gateway/cli.ts');

export type GatewayBuild = 'dist' | 'tsx';

export function portcullisConfig(ctx: PeerContext, ports: { ingress: number; egress: number }): Record<string, unknown> {
  const { material, upstreams } = ctx;
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
      { name: 'plain', url: `http://127.0.0.1:${upstreams.httpPort}`, connections: 64 },
      { name: 'mtls', url: `https://127.0.0.1:${upstreams.mtlsPort}`, tls: { spiffeId: UPSTREAM_SPIFFE_ID }, connections: 64 },
    ],
    routes: [
      { name: 's1', match: { path: { exact: '/s1' } }, upstream: 'plain' },
      { name: 's2', match: { path: { exact: '/s2' } }, upstream: 'plain', jwtProviders: ['es'] },
      { name: 's2rs', match: { path: { exact: '/s2rs' } }, upstream: 'plain', jwtProviders: ['rs'] },
      { name: 's3', match: { path: { exact: '/s3' } }, upstream: 'mtls', jwtProviders: ['es'] },
    ],
    policies: [
      { name: 'public', action: 'ALLOW', routes: ['s1'], rules: [{}] },
      { name: 'signed-in', action: 'ALLOW', routes: ['s2', 's2rs', 's3'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
    ],
    egress: {
      listener: { address: '127.0.0.1', port: ports.egress },
      allow: [{ name: 'bench', identities: ['anonymous'], hosts: [EGRESS_HOST], ports: [upstreams.egressPort] }],
      staticHosts: [{ host: EGRESS_HOST, addresses: ['127.0.0.1'] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
    },
  };
}

/** The real CLI: compiled, or the sources through tsx when the build is unavailable. */
export function gatewayCommand(build: GatewayBuild): string[] {
  return build === 'dist' ? [process.execPath, COMPILED_CLI] : [process.execPath, '--import', 'tsx', SOURCE_CLI];
}

/** `workers` > 1 runs the multi-process mode (`run --workers N`); its CPU is the whole process tree's. */
export async function startPortcullis(ctx: PeerContext, build: GatewayBuild, nodeFlags: readonly string[] = [], workers = 1): Promise<RunningPeer> {
  const ports = { ingress: await freePort(), egress: await freePort() };
  const file = ctx.material.write(`portcullis-${ports.ingress}.yaml`, stringify(portcullisConfig(ctx, ports)));
  const [node, ...rest] = gatewayCommand(build);
  const proc = start('portcullis', pinned(PROXY_CPUS, [node!, ...nodeFlags, ...rest, 'run', '-c', file, ...(workers > 1 ? ['--workers', String(workers)] : [])]), {
    cwd: ROOT,
    stdoutFile: '/dev/null',
    // --cpu-prof writes its profile on exit, which takes seconds after a loaded run.
    killAfterMs: nodeFlags.length ? 60_000 : 5000,
  });
  await waitForPort(ports.ingress, proc);
  await waitForPort(ports.egress, proc);
  return { pid: proc.child.pid!, ingressPort: ports.ingress, egressPort: ports.egress, stop: proc.stop };
}

export function portcullisDriver(build: GatewayBuild, workers = 1): PeerDriver {
  return {
    name: 'portcullis',
    packages: [],
    missing: () => (build === 'dist' && !fs.existsSync(COMPILED_CLI) ? [COMPILED_CLI] : []),
    scenarios: ['S1', 'HS', 'S2-ES256', 'S2-RS256', 'S3', 'S3-nocache', 'S4-tunnel', 'S4-new'],
    start: (ctx) => startPortcullis(ctx, build, [], workers),
  };
}
