// Steady, bounded client load on an edge listener for tests that change the gateway under traffic: every request's
// failure (a status other than 200, a reset, a refused connection) is counted with its reason.
import https from 'node:https';

export interface Load {
  sent: number;
  failed: number;
  errors: string[];
  stop(): Promise<void>;
}

/**
 * Workers sending requests back to back until stopped (or after `maxMs` at the latest, so a test that hangs never
 * leaves load running): half on fresh connections, half kept alive.
 */
export function keepTraffic(ing: { port: number; caPem: string }, workers = 4, maxMs = 180_000): Load {
  const deadline = Date.now() + maxMs;
  const state = { sent: 0, failed: 0, errors: [] as string[], running: true };
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2, ca: ing.caPem, servername: 'localhost' });
  const one = (fresh: boolean) =>
    new Promise<void>((resolve) => {
      const req = https.request(
        { host: '127.0.0.1', port: ing.port, path: '/public/load', headers: { host: 'localhost' }, servername: 'localhost', ca: ing.caPem, agent: fresh ? false : agent },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) {
              state.failed++;
              state.errors.push(`status ${res.statusCode}`);
            }
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        state.failed++;
        state.errors.push(err.message);
        resolve();
      });
      req.end();
      state.sent++;
    });
  const loops = Array.from({ length: workers }, async (_, i) => {
    while (state.running && Date.now() < deadline) await one(i % 2 === 0);
  });
  return {
    get sent() {
      return state.sent;
    },
    get failed() {
      return state.failed;
    },
    get errors() {
      return state.errors;
    },
    async stop() {
      state.running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/** Waits until `count` more requests were sent, so every change overlaps real traffic however slow the machine. */
export async function trafficSince(load: Load, start: number, count: number): Promise<void> {
  while (load.sent < start + count) await new Promise((r) => setTimeout(r, 5));
}
