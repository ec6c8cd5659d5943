// Remote JWKS sources that outlive a reload: a provider whose key source is configured the same way keeps its
// fetcher, its cached keys and its state, so a reload (a certificate rotation triggers one) during an issuer outage
// does not throw away the last good keys. Sources are counted: each JWT service built with the pool holds the ones
// it uses, and a source stops when the last service holding it is closed (the runtime a reload replaced, or one
// built for a reload that was then refused).
import type { JwksSource } from './jwks-source.js';

export interface JwksSourcePool {
  /** The source registered under `key`, or a new one from `create`; the caller must `close()` what it gets. */
  acquire(key: string, create: () => JwksSource): JwksSource;
}

export function createJwksSourcePool(): JwksSourcePool {
  const shared = new Map<string, { source: JwksSource; holders: number }>();
  return {
    acquire(key, create) {
      let entry = shared.get(key);
      if (!entry) {
        entry = { source: create(), holders: 0 };
        shared.set(key, entry);
      }
      entry.holders++;
      const held = entry;
      let released = false;
      return {
        getKey: (header, token) => held.source.getKey(header, token),
        ready: () => held.source.ready(),
        status: () => held.source.status(),
        close() {
          if (released) return;
          released = true;
          if (--held.holders > 0) return;
          shared.delete(key);
          held.source.close();
        },
      };
    },
  };
}
