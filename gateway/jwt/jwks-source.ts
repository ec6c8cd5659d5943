// Where a provider's verification keys come from: a static JWKS (inline or file) or a remote endpoint.
//
// jose's createRemoteJWKSet drops its cached keys when a refresh fails, so every token is refused while the IdP
// blips. This source fetches the document itself and keeps the last good one (stale-while-error): fresh for
// `cacheSeconds`, then refreshed in the background while the cached keys keep serving; an unknown `kid` (IdP key
// rotation, istio/istio#41588) refetches at most once per cooldown, one fetch in flight at a time.
// A provider that never fetched a usable JWKS has no key at all: its tokens are refused, never checked against a
// placeholder (CVE-2026-31837, istio/istio#53260), and it retries in the background until its first success.
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createLocalJWKSet, errors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { DEFAULTS } from '../config/defaults.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { redactUrls } from '../core/secrets.js';

/** A JWKS larger than this is not a key set; reading it would only let the endpoint exhaust our memory. */
export const JWKS_MAX_BYTES = 1_048_576;

export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set(DEFAULTS.jwtAlgorithms);
const ASYMMETRIC_KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);

export type JwksState = 'fresh' | 'stale' | 'empty';
export interface JwksStatus {
  state: JwksState;
  keys: number;
  lastFetchAt?: number;
  lastError?: string;
}

export interface JwksSource {
  /** A jose key resolver (`JWTVerifyGetKey`). */
  getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  /** Resolves once the first fetch attempt finished (at once for static keys); never rejects. */
  ready(): Promise<void>;
  status(): JwksStatus;
  close(): void;
}

/** No usable key: the provider never fetched a JWKS with a usable key, so its tokens cannot be verified. */
export class JwksUnavailableError extends Error {
  constructor(provider: string) {
    super(`no JWKS available for provider ${provider}`);
    this.name = 'JwksUnavailableError';
  }
}

/** Why a JWK cannot verify one of our tokens, or undefined when it can. */
function unusableReason(jwk: JWK): string | undefined {
  if (typeof jwk.kty !== 'string' || !ASYMMETRIC_KEY_TYPES.has(jwk.kty)) {
    // An `oct` key would make HMAC verification possible: the algorithm-confusion class (CVE-2015-9235).
    return `key type ${String(jwk.kty)} is not an asymmetric signature key`;
  }
  if (jwk.d !== undefined) return 'private key material (d) in a JWKS';
  if (jwk.use !== undefined && jwk.use !== 'sig') return `use "${jwk.use}" is not "sig"`;
  if (jwk.alg !== undefined && !ASYMMETRIC_ALGORITHMS.has(jwk.alg)) return `alg "${jwk.alg}" is not an asymmetric signature algorithm`;
  try {
    // jose imports a JWK only when a token first selects it; Node's synchronous import finds a broken key now,
    // at configuration time, instead of on some later request.
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    return `invalid key: ${(err as Error).message}`;
  }
  return undefined;
}

export interface CheckedJwks {
  set: JSONWebKeySet;
  /** Why each left-out key was left out, by index. */
  rejected: string[];
}

/** Keeps only the public asymmetric signature keys of a JWKS document; throws when it is not a JWKS at all. */
export function checkJwks(doc: unknown): CheckedJwks {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('not a JWKS: expected an object with a "keys" array');
  }
  const keys: JWK[] = [];
  const rejected: string[] = [];
  (doc as { keys: unknown[] }).keys.forEach((key, i) => {
    const why = typeof key === 'object' && key !== null && !Array.isArray(key) ? unusableReason(key as JWK) : 'not an object';
    if (why === undefined) keys.push(key as JWK);
    else rejected.push(`keys[${i}]: ${why}`);
  });
  return { set: { keys }, rejected };
}

/** The curve or key type each algorithm needs (RFC 7518 §3.1, RFC 8037 §3.1). */
const KEY_FOR_ALGORITHM: Record<string, (jwk: JWK) => boolean> = {
  RS256: (k) => k.kty === 'RSA',
  RS384: (k) => k.kty === 'RSA',
  RS512: (k) => k.kty === 'RSA',
  PS256: (k) => k.kty === 'RSA',
  PS384: (k) => k.kty === 'RSA',
  PS512: (k) => k.kty === 'RSA',
  ES256: (k) => k.kty === 'EC' && k.crv === 'P-256',
  ES384: (k) => k.kty === 'EC' && k.crv === 'P-384',
  ES512: (k) => k.kty === 'EC' && k.crv === 'P-521',
  EdDSA: (k) => k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448'),
};

/** True when the key can verify a token signed with one of `algorithms` (its own `alg`, when set, among them). */
function fitsAlgorithms(jwk: JWK, algorithms: readonly string[]): boolean {
  const candidates = jwk.alg === undefined ? algorithms : algorithms.filter((a) => a === jwk.alg);
  return candidates.some((a) => KEY_FOR_ALGORITHM[a]?.(jwk) === true);
}

/**
 * Inline or file JWKS: checked once; any unusable key, an empty set, or a set with no key for the provider's
 * algorithms is a configuration error (every token would be refused).
 */
export function createStaticJwksSource(doc: unknown, what: string, algorithms: readonly string[]): JwksSource {
  let checked: CheckedJwks;
  try {
    checked = checkJwks(doc);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  if (checked.rejected.length > 0) throw new Error(`${what}: ${checked.rejected.join('; ')}`);
  if (checked.set.keys.length === 0) throw new Error(`${what}: the JWKS has no keys, so every token would be refused`);
  if (!checked.set.keys.some((k) => fitsAlgorithms(k, algorithms))) {
    throw new Error(`${what}: no key can verify ${algorithms.join(', ')}, so every token would be refused`);
  }
  const local = createLocalJWKSet(checked.set);
  const status: JwksStatus = Object.freeze({ state: 'fresh', keys: checked.set.keys.length });
  return {
    getKey: (header, token) => local(header, token),
    ready: () => Promise.resolve(),
    status: () => status,
    close: () => undefined,
  };
}

export interface RemoteJwksOptions {
  provider: string;
  uri: string;
  cacheSeconds: number;
  cooldownSeconds: number;
  timeoutMs: number;
}

export interface RemoteJwksDeps {
  logger: Logger;
  now: () => number;
  fetch: typeof globalThis.fetch;
}

async function readLimited(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > JWKS_MAX_BYTES) throw new Error(`JWKS larger than ${JWKS_MAX_BYTES} bytes`);
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (total > JWKS_MAX_BYTES) throw new Error(`JWKS larger than ${JWKS_MAX_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One fetch's abort signal: aborted when the source closes or after `timeoutMs`, whichever comes first.
 * An explicit timer, strongly held until `done()`, rather than `AbortSignal.any([…, AbortSignal.timeout()])`: on
 * Node 20 a garbage collection can reclaim the timeout signal inside `any`, and its timer with it, so the timeout
 * silently stopped applying (a hung issuer held unknown-`kid` requests for 40 s instead of 5 s).
 */
function abortableAttempt(closed: AbortSignal, timeoutMs: number) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onClose = () => controller.abort(closed.reason);
  if (closed.aborted) onClose();
  else closed.addEventListener('abort', onClose, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    done() {
      clearTimeout(timer);
      closed.removeEventListener('abort', onClose);
    },
  };
}

/** The fetch statuses that redirect (WHATWG Fetch, "redirect status"). */
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Why an answer other than 2xx is a failed fetch. A redirect is never followed, like jose's remote JWKS and Envoy's
 * jwt_authn: followed, an https endpoint's 302 to `http://…` hands the keys to whoever sits on the path (and with
 * them every token), and one to `http://169.254.169.254/…` or loopback makes the gateway fetch for the endpoint
 * (better-auth/better-auth#10241). The target is named (the caller redacts it) so the operator can fix `jwksUri`.
 */
function notOk(res: Response, uri: string): string {
  // Node's fetch (undici) answers `redirect: 'manual'` with the 3xx itself, Location included.
  if (!REDIRECTS.has(res.status)) return `HTTP ${res.status}`;
  const location = res.headers.get('location');
  const target = location !== null && URL.canParse(location, uri) ? ` to ${new URL(location, uri).href}` : '';
  return `redirect refused: HTTP ${res.status}${target}`;
}

export function createRemoteJwksSource(options: RemoteJwksOptions, deps: RemoteJwksDeps): JwksSource {
  const { provider, uri, timeoutMs } = options;
  // What logs and status show of the URI and of fetch errors (which may quote it): no password, no query values.
  const shownUri = redactUrls(uri);
  const cacheMs = options.cacheSeconds * 1000;
  const cooldownMs = options.cooldownSeconds * 1000;
  const { logger, now } = deps;
  const closed = new AbortController();

  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let keyCount = 0;
  let lastFetchAt: number | undefined;
  let lastAttemptAt = -Infinity;
  let lastError: string | undefined;
  let inflight: Promise<void> | undefined;

  async function fetchOnce(): Promise<void> {
    lastAttemptAt = now();
    const started = performance.now();
    const attempt = abortableAttempt(closed.signal, timeoutMs);
    try {
      const res = await deps.fetch(uri, { headers: { accept: 'application/json' }, redirect: 'manual', signal: attempt.signal });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(notOk(res, uri));
      }
      const checked = checkJwks(JSON.parse(await readLimited(res)));
      // An empty answer is treated as an outage, not as "revoke everything": it keeps the last good keys.
      if (checked.set.keys.length === 0) throw new Error(`no usable keys${checked.rejected.length ? ` (${checked.rejected.join('; ')})` : ''}`);
      local = createLocalJWKSet(checked.set);
      keyCount = checked.set.keys.length;
      lastFetchAt = now();
      lastError = undefined;
      logger.info(
        { event: LOG_EVENTS.JWKS_FETCH, provider, uri: shownUri, keys: keyCount, ignoredKeys: checked.rejected.length, ms: Math.round(performance.now() - started) },
        'JWKS fetched',
      );
    } catch (err) {
      lastError = attempt.timedOut() ? `timed out after ${timeoutMs} ms` : redactUrls((err as Error).message);
      if (closed.signal.aborted) return;
      if (local === undefined) retryLater();
      logger.warn(
        { event: LOG_EVENTS.JWKS_FETCH_FAILED, provider, uri: shownUri, error: lastError, state: local ? 'stale' : 'empty', keys: keyCount },
        local ? 'JWKS fetch failed; serving the last good keys' : 'JWKS fetch failed; tokens of this provider are refused',
      );
    } finally {
      attempt.done();
    }
  }

  // A provider that never loaded keeps the gateway unready, and an unready gateway gets no requests that would
  // trigger a fetch: until its first success it retries by itself, once per cooldown (at least once a second).
  let retry: NodeJS.Timeout | undefined;
  function retryLater(): void {
    clearTimeout(retry);
    retry = setTimeout(() => void refresh(), Math.max(cooldownMs, 1000)).unref();
  }

  /** One fetch in flight at a time: concurrent callers share it. */
  function refresh(): Promise<void> {
    inflight ??= fetchOnce().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  const cooledDown = (): boolean => now() - lastAttemptAt >= cooldownMs;
  const first = refresh();

  return {
    async getKey(header, token) {
      if (local === undefined) {
        if (inflight || cooledDown()) await refresh();
        if (local === undefined) throw new JwksUnavailableError(provider);
      } else if (!inflight && lastFetchAt !== undefined && now() - lastFetchAt >= cacheMs && cooledDown()) {
        void refresh();
      }
      try {
        return await local(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || !(inflight || cooledDown())) throw err;
        await refresh();
        return local(header, token);
      }
    },
    ready: () => first,
    status() {
      const state: JwksState = local === undefined ? 'empty' : lastError === undefined ? 'fresh' : 'stale';
      return {
        state,
        keys: keyCount,
        ...(lastFetchAt !== undefined ? { lastFetchAt } : {}),
        ...(lastError !== undefined ? { lastError } : {}),
      };
    },
    close() {
      clearTimeout(retry);
      closed.abort();
    },
  };
}
