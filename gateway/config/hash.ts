// The identity of a running config: SHA-256 over the config as loaded (keys sorted, so the order of fields in the
// YAML does not matter, comments and formatting never do) and over the content of every file it names
// (certificates, keys, bundles, JWKS and token files), so a rotated certificate is a new hash too. Shown by
// `GET /config` and the `portcullis_config_info{hash}` metric, to tell which config each replica runs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { LoadedConfig } from './load.js';

export function configHash(loaded: LoadedConfig): string {
  const hash = createHash('sha256').update(canonicalJson(loaded.config));
  // The config and policy files are in the config itself; what else it names is hashed by content.
  const named = loaded.inputs.filter((file) => !loaded.files.includes(file)).sort();
  for (const file of named) hash.update(`\n${file}\n`).update(fileDigest(file));
  return hash.digest('hex');
}

/** SHA-256 of a file's content, hex; 'unreadable' when it cannot be read. */
export function fileDigest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    // Gone between the load and this read: the next reload (the file watcher's) hashes it again.
    return 'unreadable';
  }
}

/** JSON with object keys sorted at every level: two loads of the same config give the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
