// Host name → value lookup shared by SNI routing and the Host check, built once per config.
// Exact names win over wildcards; a wildcard `*.example.com` matches names of any depth below
// example.com but never the apex (Gateway API Listener.hostname), and the longest wildcard wins.

export interface HostIndex<T> {
  lookup(name: string): T | undefined;
}

/** Lower case, trailing dot and port removed: the one canonical spelling of a host everywhere. */
export function canonicalHost(host: string): string {
  let h = host;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return (end > 0 ? h.slice(0, end + 1) : h).toLowerCase();
  }
  const colon = h.lastIndexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

export function createHostIndex<T>(entries: readonly { hostnames: readonly string[]; value: T }[]): HostIndex<T> {
  const exact = new Map<string, T>();
  const wildcards = new Map<string, T>(); // key: suffix including the leading dot
  for (const { hostnames, value } of entries) {
    for (const raw of hostnames) {
      const name = canonicalHost(raw);
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
