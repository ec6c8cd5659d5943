// Small waits and ports for tests that run the gateway as a separate process.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port free on 127.0.0.1 right now (bound and released), for configs that must name their ports. */
export async function freePort(): Promise<number> {
  return (await freePorts(['port'])).port;
}

/**
 * A free port on 127.0.0.1 for each name, all different. Several ports of one config must come from one call: they
 * are bound together and only then released. Taken one at a time they can repeat (the kernel hands a port it just
 * got back out again: about 1 in 600 runs of five here), and a config naming a port twice does not start.
 */
export async function freePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const bound = await Promise.allSettled(names.map(() => listening()));
  const servers = bound.flatMap((b) => (b.status === 'fulfilled' ? [b.value] : []));
  try {
    const failed = bound.find((b) => b.status === 'rejected');
    if (failed) throw failed.reason;
    return Object.fromEntries(names.map((name, i) => [name, (servers[i]!.address() as net.AddressInfo).port])) as Record<K, number>;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

function listening(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** Polls `probe` until it returns something other than undefined; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
