// Host name → value lookup shared by SNI routing and the Host check, built once per config.
// Exact names win over wildcards; a wildcard `*.example.com` matches names of any depth below
// example.com but never the apex (Gateway API Listener.hostname), and the longest wildcard wins.
import { canonicalHost, canonicalHostPattern, splitAuthority } from '../../core/net/host.js';

export interface HostIndex<T> {
  lookup(name: string): T | undefined;
}

/** The canonical host of an authority (`host[:port]`), as lookups take it; undefined when it is no host at all. */
export function authorityHost(authority: string): string | undefined {
  return canonicalHost(splitAuthority(authority).host)?.host;
}

export function createHostIndex<T>(entries: readonly { hostnames: readonly string[]; value: T }[]): HostIndex<T> {
  const exact = new Map<string, T>();
  const wildcards = new Map<string, T>(); // key: suffix including the leading dot
  for (const { hostnames, value } of entries) {
    for (const raw of hostnames) {
      // The schema admits only valid names and patterns; the raw spelling is a fallback that never matches.
      const name = canonicalHostPattern(raw)?.host ?? raw;
      if (name.startsWith('*.')) wildcards.set(name.slice(1), value);
      else exact.set(name, value);
    }
  }
  return {
    lookup(name: string): T | undefined {
      const hit = exact.get(name);
      if (hit !== undefined || wildcards.size === 0) return hit;
      // Walk the labels from the most specific suffix to the least.
      for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
        const match = wildcards.get(name.slice(dot));
        if (match !== undefined) return match;
      }
      return undefined;
    },
  };
}
