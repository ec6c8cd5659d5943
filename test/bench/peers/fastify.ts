// Starts fastify-proxy.ts (fastify + @fastify/http-proxy) as its own process on the proxy core; skipped, with the
// npm packages named, when they are not installed (they are not dependencies of the project).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { PROXY_CPUS, freePort, pinned, start, waitForPort } from '../proc.js';
import type { PeerDriver } from '../scenarios.js';

const SCRIPT = fileURLToPath(new URL('./fastify-proxy.ts', import.meta.url));
const PACKAGES = ['fastify', '@fastify/http-proxy'] as const;

function installed(name: string): boolean {
  try {
    createRequire(SCRIPT).resolve(name);
    return true;
  } catch {
    return false;
  }
}

export const fastifyPeer: PeerDriver = {
  name: 'fastify',
  packages: [],
  npmPackages: PACKAGES,
  missing: () => PACKAGES.filter((p) => !installed(p)).map((p) => `npm package ${p}`),
  scenarios: ['S1'],
  async start({ material, upstreams, node }) {
    const port = await freePort();
    const settings = { cert: material.listener.cert, key: material.listener.key, port, upstreamPort: upstreams.httpPort };
    const proc = start('fastify', pinned(PROXY_CPUS, [node, '--import', 'tsx', SCRIPT]), {
      env: { ...process.env, BENCH_FASTIFY_PROXY: JSON.stringify(settings) },
    });
    await waitForPort(port, proc);
    return { pid: proc.child.pid!, ingressPort: port, stop: proc.stop };
  },
};
