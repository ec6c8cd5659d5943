// The config hash: the same config however its YAML is written, a new hash when the config or any file it names
// changes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configHash } from '../../../gateway/config/hash.js';
import type { LoadedConfig } from '../../../gateway/config/load.js';
import type { Config } from '../../../gateway/config/schema.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-hash-'));
const cert = path.join(dir, 'cert.pem');
const main = path.join(dir, 'portcullis.yaml');

function loaded(config: Record<string, unknown>): LoadedConfig {
  return { config: config as unknown as Config, files: [main], inputs: [main, cert] };
}

test('key order does not matter; the config and the content of named files do', (t) => {
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(cert, 'one');
  fs.writeFileSync(main, 'any text: the main file is hashed as the config it gave');
  const a = configHash(loaded({ version: 'v1', routes: [{ name: 'r', upstream: 'u' }] }));
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(configHash(loaded({ routes: [{ upstream: 'u', name: 'r' }], version: 'v1' })), a);
  fs.writeFileSync(main, 'a comment changed');
  assert.equal(configHash(loaded({ version: 'v1', routes: [{ name: 'r', upstream: 'u' }] })), a);
  assert.notEqual(configHash(loaded({ version: 'v1', routes: [{ name: 'r', upstream: 'v' }] })), a);
  fs.writeFileSync(cert, 'two');
  assert.notEqual(configHash(loaded({ version: 'v1', routes: [{ name: 'r', upstream: 'u' }] })), a, 'a rotated certificate is a new hash');
});
