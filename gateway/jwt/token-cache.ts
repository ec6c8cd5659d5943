// Verified-token cache (Envoy's jwt_cache_config): a token seen before skips signature verification.
// Only valid tokens are stored, keyed by the exact token string, and no entry outlives the token's `exp`.
// Map iteration order is insertion order, so re-inserting on a hit and evicting the first key is an LRU.

/** Caps how long a key rotation or revocation can be ignored for a token that has no (or a far) `exp`. */
export const TOKEN_CACHE_MAX_AGE_MS = 5 * 60_000;

export interface TokenCache<T> {
  get(token: string, now: number): T | undefined;
  /** `exp` in seconds since the epoch (the JWT claim); the entry is not stored when already past it. */
  set(token: string, value: T, now: number, exp: number | undefined): void;
  readonly size: number;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export function createTokenCache<T>(maxEntries: number): TokenCache<T> {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new Error(`token cache size must be a positive integer, got ${maxEntries}`);
  const entries = new Map<string, Entry<T>>();
  return {
    get(token, now) {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      entries.delete(token);
      if (now >= entry.expiresAt) return undefined;
      entries.set(token, entry);
      return entry.value;
    },
    set(token, value, now, exp) {
      const expiresAt = Math.min(now + TOKEN_CACHE_MAX_AGE_MS, exp === undefined ? Infinity : exp * 1000);
      if (expiresAt <= now) return;
      entries.delete(token);
      entries.set(token, { value, expiresAt });
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
    },
    get size() {
      return entries.size;
    },
  };
}
