// The raw header list of a request, for what Node's folded `headers` object hides: it keeps only the first
// Host, Authorization and Proxy-Authorization line of a request that repeats them.

/** Occurrences of a (lower-case) header name in `rawHeaders`. */
export function countHeader(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

/** The value of a (lower-case) header sent exactly once; undefined when it is absent or repeated. */
export function onlyHeaderValue(rawHeaders: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== name.length || rawHeaders[i]!.toLowerCase() !== name) continue;
    if (found !== undefined) return undefined;
    found = rawHeaders[i + 1]!;
  }
  return found;
}
