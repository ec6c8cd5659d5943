// Starts node-proxy.ts (the Node baseline) as its own process on the proxy core.
import { fileURLToPath } from 'node:url';
import { EGRESS_HOST } from '../material.js';
import { PROXY_CPUS, freePort, pinned, start, waitForPort } from '../proc.js';
import type { PeerDriver } from '../scenarios.js';

const SCRIPT = fileURLToPath(new URL('./node-proxy.ts', import.meta.url));

export const nodeUndici: PeerDriver = {
  name: 'node-undici',
  packages: [],
  missing: () => [],
  scenarios: ['S1', 'HS', 'S4-tunnel', 'S4-new'],
  async start({ material, upstreams, node }) {
    const ingressPort = await freePort();
    const egressPort = await freePort();
    const settings = {
      cert: material.listener.cert,
      key: material.listener.key,
      ingressPort,
      egressPort,
      upstreamPort: upstreams.httpPort,
      egressHost: EGRESS_HOST,
      egressTargetPort: upstreams.egressPort,
    };
    const proc = start('node-undici', pinned(PROXY_CPUS, [node, '--import', 'tsx', SCRIPT]), {
      env: { ...process.env, BENCH_NODE_PROXY: JSON.stringify(settings) },
    });
    await waitForPort(ingressPort, proc);
    await waitForPort(egressPort, proc);
    return { pid: proc.child.pid!, ingressPort, egressPort, stop: proc.stop };
  },
};
