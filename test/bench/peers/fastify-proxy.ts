// The peer the design card named: fastify + @fastify/http-proxy (undici underneath, through @fastify/reply-from),
// TLS 1.3, `GET /s1` proxied to the plain upstream. Beside the node:https + undici peer it shows what the framework
// layer costs on the hot path. Started as its own process by fastify.ts with its settings in BENCH_FASTIFY_PROXY.
// The packages are not dependencies of the project: they are loaded by name so the type check does not need them.
import fs from 'node:fs';

interface FastifyApp {
  register(plugin: unknown, options: Record<string, unknown>): unknown;
  listen(options: { port: number; host: string }): Promise<string>;
}
type FastifyFactory = (options: Record<string, unknown>) => FastifyApp;

const cfg = JSON.parse(process.env.BENCH_FASTIFY_PROXY ?? '{}') as { cert: string; key: string; port: number; upstreamPort: number };
const load = async <T>(name: string): Promise<T> => ((await import(name)) as { default: T }).default;
const fastify = await load<FastifyFactory>('fastify');
const httpProxy = await load<unknown>('@fastify/http-proxy');

const app = fastify({ logger: false, https: { cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key), minVersion: 'TLSv1.3' } });
app.register(httpProxy, { upstream: `http://127.0.0.1:${cfg.upstreamPort}`, prefix: '/s1', rewritePrefix: '/s1', undici: { connections: 64, pipelining: 1 } });
await app.listen({ port: cfg.port, host: '127.0.0.1' });
process.once('SIGTERM', () => process.exit(0));
