// The README's "Canary rollout and failover", run for real: four backend processes on 127.0.0.1 (three endpoints of
// `stable`, one of `canary`), the gateway on scripts/canary-demo.yaml, then
//   1. 2,000 requests at 90/10, counted per backend and endpoint;
//   2. a reload to 50/50, and 2,000 requests again;
//   3. one stable endpoint killed with SIGKILL under steady load: failed requests, and when it was ejected.
// `npm run --silent demo:canary`. PORTCULLIS_DEMO_EPHEMERAL=1 puts the backends on free ports instead of 9101–9104
// (the test that runs this script does).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { parse, stringify } from 'yaml';
import { ensureDevPki } from '../certs/dev-bootstrap.js';
import { startGateway } from '../gateway/app.js';
import { loadConfigText } from '../gateway/config/load.js';
import type { Config } from '../gateway/config/schema.js';
import { createLogger } from '../gateway/core/log.js';
import { upstreamStatus } from '../gateway/ingress/runtime.js';
import { startEndpointProcess, type EndpointProcess } from '../test/helpers/endpoint-process.js';

const DEMO = new URL('./canary-demo.yaml', import.meta.url);
const ephemeral = process.env.PORTCULLIS_DEMO_EPHEMERAL === '1';

interface Fragment {
  upstreams: { name: string; url: string; endpoints?: { address: string }[] }[];
  routes: Config['routes'];
  policies: Config['policies'];
}

async function main(): Promise<void> {
  const demo = parse(readFileSync(DEMO, 'utf8')) as Fragment;
  // Every address the demo config names, one backend process each, named after its upstream.
  const addresses = demo.upstreams.flatMap((u) => (u.endpoints ?? [{ address: new URL(u.url).host }]).map((e) => ({ upstream: u.name, address: e.address })));
  const backends = await Promise.all(
    addresses.map(({ upstream, address }, i) => startEndpointProcess(`${upstream}-${i + 1}`, ephemeral ? 0 : Number(address.split(':')[1]))),
  );
  const actual = new Map(addresses.map((a, i) => [a.address, backends[i]!.address]));
  const state = mkdtempSync(join(tmpdir(), 'portcullis-canary-demo-'));
  const pki = ensureDevPki(state, { trustDomain: 'portcullis.dev', hostnames: ['localhost'] });
  const config = {
    version: 'v1',
    listeners: [
      { name: 'edge', address: '127.0.0.1', port: 0, hosts: [{ name: 'localhost', hostnames: ['localhost'], tls: { mode: 'terminate', certificate: { cert: pki.serverCert, key: pki.serverKey } } }] },
    ],
    upstreams: demo.upstreams.map((u) => ({
      ...u,
      url: u.url.replace(/[^/]+$/, (host) => actual.get(host) ?? host),
      ...(u.endpoints ? { endpoints: u.endpoints.map((e) => ({ ...e, address: actual.get(e.address)! })) } : {}),
    })),
    routes: demo.routes,
    policies: demo.policies,
  };
  const loaded = loadConfigText(stringify(config), join(state, 'portcullis.yaml'));
  const gateway = await startGateway(loaded.config, { logger: createLogger('silent') });
  const client = new Pool(`https://127.0.0.1:${gateway.ports.get('edge')!}`, { connections: 8, connect: { ca: readFileSync(pki.caCert, 'utf8'), servername: 'localhost' } });
  try {
    console.log(`gateway on 127.0.0.1:${gateway.ports.get('edge')}; stable: ${backends.slice(0, 3).map((b) => b.port).join(', ')}; canary: ${backends[3]!.port}`);
    report('weights stable 90, canary 10', await run(client, 2000));
    await gateway.reload(reweighted(loaded.config, { stable: 50, canary: 50 }));
    report('reloaded: weights stable 50, canary 50', await run(client, 2000));
    await failover(client, gateway, backends[1]!);
  } finally {
    await client.close();
    await gateway.close(1000);
    await Promise.all(backends.map((b) => b.kill()));
    rmSync(state, { recursive: true, force: true });
  }
}

function reweighted(config: Config, weights: Record<string, number>): Config {
  return { ...config, routes: config.routes.map((r) => ({ ...r, backendRefs: r.backendRefs?.map((b) => ({ ...b, weight: weights[b.name] ?? 0 })) })) };
}

interface Tally {
  requests: number;
  failed: number;
  /** Answers per backend process (`stable-2`, …). */
  by: Map<string, number>;
}

/** `total` requests, or until `stop()` when `total` is Infinity; 8 clients, `pauseMs` between two of one client. */
function load(client: Pool, total: number, pauseMs = 0): { done: Promise<Tally>; stop(): void } {
  const tally: Tally = { requests: 0, failed: 0, by: new Map() };
  let running = true;
  const loop = async () => {
    while (running && tally.requests < total) {
      tally.requests++;
      const res = await client.request({ path: '/shop/item', method: 'GET', headers: { host: 'localhost' } }).catch(() => undefined);
      const body = res ? await res.body.text() : '';
      if (res?.statusCode !== 200) tally.failed++;
      else tally.by.set(body, (tally.by.get(body) ?? 0) + 1);
      if (pauseMs > 0) await sleep(pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: 8 }, loop)).then(() => tally);
  return { done, stop: () => void (running = false) };
}

const run = (client: Pool, total: number) => load(client, total).done;

function report(title: string, t: Tally): void {
  const backend = (name: string) => [...t.by].filter(([id]) => id.startsWith(`${name}-`)).sort(([a], [b]) => a.localeCompare(b));
  const sum = (list: [string, number][]) => list.reduce((n, [, c]) => n + c, 0);
  const stable = backend('stable');
  console.log(`${title}: ${t.requests} requests, ${t.failed} failed`);
  console.log(`  stable ${String(sum(stable)).padStart(5)}  (${stable.map(([id, n]) => `${id} ${n}`).join(', ')})`);
  console.log(`  canary ${String(sum(backend('canary'))).padStart(5)}`);
}

async function failover(client: Pool, gateway: Awaited<ReturnType<typeof startGateway>>, victim: EndpointProcess): Promise<void> {
  const traffic = load(client, Infinity, 5);
  await sleep(500);
  const killed = performance.now();
  await victim.kill();
  const out = () => upstreamStatus(gateway.runtime()).find((u) => u.name === 'stable')!.endpoints.find((e) => e.address === victim.address)!;
  let ejectedMs: number | undefined;
  while (performance.now() - killed < 3000) {
    const e = out();
    if (ejectedMs === undefined && (e.ejectedUntil !== undefined || !e.healthy)) ejectedMs = performance.now() - killed;
    await sleep(5);
  }
  traffic.stop();
  const t = await traffic.done;
  const ejected = ejectedMs === undefined ? 'not ejected' : `ejected ${Math.round(ejectedMs)} ms after the kill`;
  report(`${victim.id} killed (SIGKILL) under load, 3.5 s of traffic: ${ejected}`, t);
}

await main();
