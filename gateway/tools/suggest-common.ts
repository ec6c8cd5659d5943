// Small helpers both halves of `portcullis suggest` (ingress policies, egress rules) group observations with.

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** Distinct values, sorted. */
export function distinct(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}
