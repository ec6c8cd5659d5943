// The limits stage: counts each request against its route's named limit, in memory or, when `redis` is configured,
// in Redis so that every replica shares one count. Counting is rate-limiter-flexible's (fixed windows, Lua-atomic
// in Redis, `insuranceLimiter` as the local fallback); this file only compiles the config, derives the key from
// the request and turns a refusal into the gateway's error.
//
// Redis down: the ioredis client never queues (enableOfflineQueue: false) and fails a command after one retry, so a
// dead Redis costs a request nothing. With `failureMode: open` (default) each replica then counts locally with the
// same limit (rate-limiter-flexible `insuranceLimiter`); with `closed` the request is refused 503. Envoy's global
// rate limit fails open silently by default (`failure_mode_deny: false`); here the mode is per limit, the outage is
// logged once when it starts and once when it ends, and `portcullis_redis_up` follows it.
//
// Several worker processes (`run --workers N`, gateway/cluster.ts): a count in each worker's memory would let the
// machine allow N times every limit, so in a worker the in-memory counts (the limits themselves without Redis, the
// fallback with it) live in the primary process, asked over IPC (rate-limiter-flexible `RateLimiterCluster`, answered
// by the `RateLimiterClusterMaster` the primary creates). A primary that does not answer within
// CLUSTER_TIMEOUT_MS is treated like an unreachable store: the limit's `failureMode` decides.
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis as RedisClient } from 'ioredis';
import {
  BurstyRateLimiter,
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { RequestAttributes } from '../../policies/types.js';
import { DEFAULTS } from '../config/defaults.js';
import type { RateLimitConfig, RedisConfig } from '../config/operations-schema.js';
import { createDryRunReporter } from '../core/dry-run.js';
import { GatewayError } from '../core/errors.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';

export interface RateLimitResult {
  allowed: boolean;
  /** Requests per window (the steady rate; burst tokens are not included). */
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/** What the key of a request is derived from: the attributes the pipeline has after authn. */
export type RateLimitRequest = Pick<RequestAttributes, 'remoteIp' | 'peerSpiffeId' | 'auth' | 'header'>;

export interface RateLimiterDeps {
  logger: Logger;
  metrics?: Pick<Metrics, 'rateLimitHit' | 'rateLimitStoreFailure' | 'redisUp' | 'dryRunWouldDeny'>;
  /** Where `PORTCULLIS_REDIS_URL` is read when `redis.url` is unset; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface RateLimiter {
  /** Counts one request for `key` (used as is: make it with `hashKey`) under the limit named `limitName`. */
  check(limitName: string, key: string): Promise<RateLimitResult>;
  /**
   * The pipeline stage: counts the request under `limitName` by the limit's configured key and throws
   * `GW_RATE_LIMITED` (429, with Retry-After and RateLimit-* headers) when it is over, or `GW_UNAVAILABLE` (503)
   * when the limit fails closed and Redis is unreachable. A limit in `mode: dry-run` refuses nothing: a request over
   * it is reported as a would-deny for `at` and allowed.
   */
  enforce(limitName: string, request: RateLimitRequest, at: { requestId: string; route: string }): Promise<RateLimitResult>;
  /** True while Redis is connected; always true without Redis. */
  redisHealthy(): boolean;
  close(): Promise<void>;
}

/** How long a worker waits for the primary's count; the primary only counts, so this is generous. */
const CLUSTER_TIMEOUT_MS = 1_000;

/** The burst pool refills once per minute (or per window when that is longer): bursts stay bursts. */
const BURST_WINDOW_SECONDS = 60;

type KeyKind = 'ip' | 'sub' | 'spiffe' | 'header' | 'egress';

interface CompiledLimit {
  name: string;
  points: number;
  failureMode: 'open' | 'closed';
  dryRun: boolean;
  limiter: RateLimiterAbstract | BurstyRateLimiter;
  key(request: RateLimitRequest): string;
}

export function createRateLimiter(limits: readonly RateLimitConfig[], redis: RedisConfig | undefined, deps: RateLimiterDeps): RateLimiter {
  const store = redis ? connectRedis(redis, deps) : undefined;
  const compiled = new Map<string, CompiledLimit>();
  // Each RateLimiterCluster adds a process 'message' listener it never removes; without taking them off at close,
  // every reload that changes the limits would leak one listener (and its limiter) per limit.
  const listenersBefore = new Set(process.listeners('message'));
  try {
    // Names are unique: the config loader checks that, with the place of both definitions.
    for (const limit of limits) compiled.set(limit.name, compileLimit(limit, store));
  } catch (err) {
    store?.client.disconnect();
    throw err;
  }
  const clusterListeners = process.listeners('message').filter((l) => !listenersBefore.has(l));
  const wouldDeny = createDryRunReporter(deps);

  async function check(limitName: string, key: string): Promise<RateLimitResult> {
    const limit = compiled.get(limitName);
    if (!limit) throw new Error(`rate limit "${limitName}" is not configured`);
    const storeDown = store !== undefined && !store.healthy();
    if (storeDown && limit.failureMode === 'open') deps.metrics?.rateLimitStoreFailure(limit.name, 'fallback');
    try {
      const res = await limit.limiter.consume(key);
      return { allowed: true, limit: limit.points, remaining: res.remainingPoints, resetMs: res.msBeforeNext };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        // A dry-run limit refuses nothing, so it has no hits: its would-denies are counted by the caller.
        if (!limit.dryRun) deps.metrics?.rateLimitHit(limit.name);
        return { allowed: false, limit: limit.points, remaining: 0, resetMs: err.msBeforeNext };
      }
      return storeFailed(limit, err);
    }
  }

  function storeFailed(limit: CompiledLimit, err: unknown): RateLimitResult {
    const error = err instanceof Error ? err.message : String(err);
    // A dry-run limit must never change the outcome, not even while its store is down.
    if (limit.failureMode === 'closed' && !limit.dryRun) {
      deps.metrics?.rateLimitStoreFailure(limit.name, 'refused');
      deps.logger.debug({ event: LOG_EVENTS.RATE_LIMIT_STORE_FAILED, limit: limit.name, error, outcome: 'refused' });
      throw new GatewayError('GW_UNAVAILABLE', 'rate_limit_store_unavailable', { 'retry-after': '1' });
    }
    // Only reached when even the local fallback failed (or the limit has none): fail open, loudly.
    deps.metrics?.rateLimitStoreFailure(limit.name, 'allowed');
    deps.logger.warn({ event: LOG_EVENTS.RATE_LIMIT_STORE_FAILED, limit: limit.name, error, outcome: 'allowed' });
    return { allowed: true, limit: limit.points, remaining: limit.points, resetMs: 0 };
  }

  return {
    check,
    async enforce(limitName, request, at) {
      const limit = compiled.get(limitName);
      if (!limit) throw new Error(`rate limit "${limitName}" is not configured`);
      const result = await check(limitName, limit.key(request));
      if (result.allowed) return result;
      if (!limit.dryRun) throw new GatewayError('GW_RATE_LIMITED', limitName, rateLimitHeaders(result));
      wouldDeny({ kind: 'rate_limit', policy: limitName, reason: 'over_limit', requestId: at.requestId, route: at.route });
      return { ...result, allowed: true };
    },
    redisHealthy: () => store?.healthy() ?? true,
    async close() {
      for (const listener of clusterListeners) process.off('message', listener);
      await store?.close();
    },
  };
}

/**
 * Response headers for a decision: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) from
 * draft-ietf-httpapi-ratelimit-headers (the three-field form of drafts 00–06 that clients parse today), and on a
 * refusal `Retry-After` (RFC 9110 §10.2.3, RFC 6585 §4) in seconds, at least 1.
 */
export function rateLimitHeaders(result: RateLimitResult): Record<string, string> {
  const reset = Math.max(0, Math.ceil(result.resetMs / 1000));
  const headers: Record<string, string> = {
    'ratelimit-limit': String(result.limit),
    'ratelimit-remaining': String(result.remaining),
    'ratelimit-reset': String(reset),
  };
  if (!result.allowed) headers['retry-after'] = String(Math.max(1, reset));
  return headers;
}

interface RedisStore {
  client: RedisClient;
  keyPrefix: string;
  healthy(): boolean;
  close(): Promise<void>;
}

/** The Redis URL: `redis.url`, else `$PORTCULLIS_REDIS_URL`; throws when neither is a redis:// or rediss:// URL. */
export function redisUrl(config: RedisConfig, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const url = config.url ?? env.PORTCULLIS_REDIS_URL;
  if (url === undefined || !/^rediss?:\/\//.test(url)) {
    throw new Error('set redis.url or PORTCULLIS_REDIS_URL to a redis:// or rediss:// URL');
  }
  return url;
}

function connectRedis(config: RedisConfig, deps: RateLimiterDeps): RedisStore {
  const url = redisUrl(config, deps.env);
  // Logged without its userinfo: the URL may carry the Redis password.
  const where = new URL(url).host;
  const client = new (loadRedis())(url, {
    // A command issued while disconnected fails at once (and the fallback decides) instead of waiting in a queue.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: config.connectTimeoutMs ?? DEFAULTS.redisConnectTimeoutMs,
    commandTimeout: config.commandTimeoutMs ?? DEFAULTS.redisCommandTimeoutMs,
  });
  let healthy = false;
  let outage = false;
  let closing = false;
  deps.metrics?.redisUp(false);
  client.on('ready', () => {
    healthy = true;
    deps.metrics?.redisUp(true);
    if (outage) deps.logger.info({ event: LOG_EVENTS.RATE_LIMIT_REDIS_UP, redis: where }, 'rate-limit Redis is back; counting is shared again');
    outage = false;
  });
  const down = (err?: Error) => {
    healthy = false;
    deps.metrics?.redisUp(false);
    if (outage || closing) return;
    outage = true;
    deps.logger.warn(
      { event: LOG_EVENTS.RATE_LIMIT_REDIS_DOWN, redis: where, error: err?.message },
      'rate-limit Redis unreachable; limits fall back per their failureMode',
    );
  };
  // ioredis keeps reconnecting on its own (backoff up to 2 s); these only track the state.
  client.on('error', down);
  client.on('close', () => down());
  return {
    client,
    keyPrefix: config.keyPrefix ?? DEFAULTS.redisKeyPrefix,
    healthy: () => healthy,
    async close() {
      closing = true;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}

function compileLimit(limit: RateLimitConfig, store: RedisStore | undefined): CompiledLimit {
  const [points, duration] = 'requestsPerSecond' in limit ? [limit.requestsPerSecond, 1] : [limit.requests, limit.perSeconds];
  const failureMode = limit.failureMode ?? DEFAULTS.rateLimitFailureMode;
  const build = (keyPrefix: string, pts: number, secs: number): RateLimiterAbstract => {
    if (!store) return inMemory(keyPrefix, pts, secs);
    return new RateLimiterRedis({
      storeClient: store.client,
      keyPrefix: `${store.keyPrefix}${keyPrefix}`,
      points: pts,
      duration: secs,
      rejectIfRedisNotReady: true,
      ...(failureMode === 'open' ? { insuranceLimiter: inMemory(keyPrefix, pts, secs) } : {}),
    });
  };
  const main = build(`rl:${limit.name}`, points, duration);
  const burst = limit.burst ?? 0;
  return {
    name: limit.name,
    points,
    failureMode,
    dryRun: limit.mode === 'dry-run',
    limiter: burst > 0 ? new BurstyRateLimiter(main, build(`rl:${limit.name}:burst`, burst, Math.max(BURST_WINDOW_SECONDS, duration))) : main,
    key: compileKey(limit.key ?? DEFAULTS.rateLimitKey),
  };
}

/** This process's memory, or in a cluster worker the primary's, so one count covers every worker of the machine. */
function inMemory(keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  if (!cluster.isWorker) return new RateLimiterMemory({ keyPrefix, points, duration });
  // The primary keeps the first limiter created under a prefix, with that one's options: the prefix carries the
  // numbers, so a reload that changes a limit starts a fresh count instead of silently keeping the old limit.
  return new RateLimiterCluster({ keyPrefix: `${keyPrefix}:${points}/${duration}`, points, duration, timeoutMs: CLUSTER_TIMEOUT_MS });
}

/**
 * The request's key under a limit. Each kind is hashed with its name, so an IP and a subject that happen to be the
 * same string never share a count, and a client-chosen header value cannot make a Redis key of arbitrary length.
 */
function compileKey(spec: string): (request: RateLimitRequest) => string {
  const byIp = (r: RateLimitRequest) => hashKey('ip', r.remoteIp);
  if (spec === 'client_ip') return byIp;
  // The principal (`iss/sub`) rather than the bare `sub`: two issuers may both have a subject "42".
  if (spec === 'jwt_subject') return (r) => (r.auth ? hashKey('sub', r.auth.principal) : byIp(r));
  if (spec === 'spiffe_id') return (r) => (r.peerSpiffeId ? hashKey('spiffe', r.peerSpiffeId) : byIp(r));
  if (spec.startsWith('header:')) {
    const name = spec.slice('header:'.length).toLowerCase();
    return (r) => {
      const values = r.header(name);
      return values && values.length > 0 ? hashKey('header', values.join(',')) : byIp(r);
    };
  }
  throw new Error(`rate limit key "${spec}" is not one of client_ip, jwt_subject, spiffe_id, header:<name>`);
}

export function hashKey(kind: KeyKind, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`;
}

/**
 * ioredis is loaded only when a config names Redis: it is a quarter of the gateway's resident memory at
 * start-up (~24 MB), which a single gateway with in-memory limits never needs.
 */
function loadRedis(): typeof RedisClient {
  return (createRequire(import.meta.url)('ioredis') as { Redis: typeof RedisClient }).Redis;
}
