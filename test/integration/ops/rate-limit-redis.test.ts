// Rate limits against real Redis: the shared one (REDIS_URL, default 127.0.0.1:6379) with a key prefix unique to
// this run, and a private redis-server child that this test kills and restarts (the shared one is never touched).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { GatewayError } from '../../../gateway/core/errors.js';
import { createLogger } from '../../../gateway/core/log.js';
import { createMetrics } from '../../../gateway/core/metrics.js';
import { LOG_EVENTS } from '../../../gateway/core/log.js';
import { createRateLimiter, type RateLimiter } from '../../../gateway/limits/rate-limiter.js';

const SHARED_REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, events: (event: string) => lines.filter((l) => l.event === event) };
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function countAllowed(rl: RateLimiter, limit: string, key: string, times: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < times; i++) if ((await rl.check(limit, key)).allowed) allowed++;
  return allowed;
}

describe('rate limits shared through Redis', () => {
  const prefix = `portcullis-test:${randomUUID()}:`;
  const admin = new Redis(SHARED_REDIS, { lazyConnect: true });
  after(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  test('two gateway instances share one count: 10 per minute, 6 calls on each, exactly 10 allowed', async () => {
    const { logger } = logSink();
    const limits = [{ name: 'shared', requests: 10, perSeconds: 60 }];
    const a = createRateLimiter(limits, { url: SHARED_REDIS, keyPrefix: prefix }, { logger });
    const b = createRateLimiter(limits, { url: SHARED_REDIS, keyPrefix: prefix }, { logger });
    try {
      await waitFor('both instances connected', () => a.redisHealthy() && b.redisHealthy());
      const [onA, onB] = await Promise.all([countAllowed(a, 'shared', 'client-1', 6), countAllowed(b, 'shared', 'client-1', 6)]);
      assert.equal(onA + onB, 10);
      const keys = await admin.keys(`${prefix}*`);
      assert.equal(keys.length, 1, 'one Redis key for the one client');
      assert.ok(keys[0]!.length < prefix.length + 64, 'keys are bounded');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('Redis outage and recovery', () => {
  let redis: ChildProcess | undefined;
  const stopRedis = async () => {
    const child = redis;
    redis = undefined;
    // Ended already (by a signal too): its 'exit' will not come again.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  after(stopRedis);

  test('falls back to a local limit while Redis is down, logs the outage once, and goes back to Redis', async () => {
    const port = await freePort();
    const startRedis = () => {
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    };
    startRedis();
    const url = `redis://127.0.0.1:${port}`;
    await redisAnswers(url);
    const { logger, events } = logSink();
    const metrics = createMetrics();
    const rl = createRateLimiter(
      [
        { name: 'open', requests: 5, perSeconds: 60 },
        { name: 'closed', requests: 5, perSeconds: 60, failureMode: 'closed' },
        { name: 'trial', requests: 5, perSeconds: 60, failureMode: 'closed', mode: 'dry-run' },
      ],
      { url, keyPrefix: 'outage:' },
      { logger, metrics },
    );
    const probe = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    try {
      await waitFor('connected', () => rl.redisHealthy());
      assert.match(await metrics.registry.metrics(), /^portcullis_redis_up 1$/m);
      assert.equal(await countAllowed(rl, 'open', 'k', 2), 2);
      assert.equal(await countAllowed(rl, 'closed', 'k', 1), 1);

      await stopRedis();
      await waitFor('outage noticed', () => !rl.redisHealthy());
      // A few reconnection attempts fail meanwhile; the outage is still one log line.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(events(LOG_EVENTS.RATE_LIMIT_REDIS_DOWN).length, 1);
      assert.match(await metrics.registry.metrics(), /^portcullis_redis_up 0$/m);

      // failureMode open: still answered, under a local limit of the same size (fresh count on this replica).
      assert.equal(await countAllowed(rl, 'open', 'k', 7), 5);
      // failureMode closed: refused 503 while Redis is down.
      const refusal = await rl.check('closed', 'k').then(
        () => assert.fail('closed limit must refuse while Redis is down'),
        (e: unknown) => e,
      );
      assert.ok(refusal instanceof GatewayError);
      assert.equal(refusal.code, 'GW_UNAVAILABLE');
      assert.equal(refusal.status, 503);
      // A dry-run limit never refuses, not even one that fails closed.
      assert.equal((await rl.check('trial', 'k')).allowed, true);
      const text = await metrics.registry.metrics();
      assert.match(text, /portcullis_rate_limit_store_failures_total\{limit="trial",outcome="allowed"\} 1/);
      assert.match(text, /portcullis_rate_limit_store_failures_total\{limit="open",outcome="fallback"\} 7/);
      assert.match(text, /portcullis_rate_limit_store_failures_total\{limit="closed",outcome="refused"\} 1/);

      startRedis();
      await waitFor('reconnected', () => rl.redisHealthy());
      assert.equal(events(LOG_EVENTS.RATE_LIMIT_REDIS_UP).length, 1);
      assert.equal(events(LOG_EVENTS.RATE_LIMIT_REDIS_DOWN).length, 1);
      // Counting is in the (empty, restarted) Redis again, not in the exhausted local fallback.
      assert.equal(await countAllowed(rl, 'open', 'k', 1), 1);
      await probe.connect();
      assert.equal((await probe.keys('outage:rl:open:*')).length, 1);
      assert.match(await metrics.registry.metrics(), /^portcullis_redis_up 1$/m);
    } finally {
      probe.disconnect();
      await rl.close();
      await stopRedis();
    }
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once a server at `url` answers PING (the child needs a moment to bind). */
async function redisAnswers(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}
