// The YAML fragments of docs/jwt.md and docs/configuration.md that show the hardening fields are checked against
// the schema, so a renamed or removed field cannot leave a stale example behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import { JwtProviderSchema, ListenerSchema, RouteSchema } from '../../../gateway/config/schema.js';

/** The ```yaml block of a doc file that contains `marker`, parsed. */
function yamlBlock(file: string, marker: string): Record<string, unknown[]> {
  const blocks = [...fs.readFileSync(new URL(`../../../docs/${file}`, import.meta.url), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes(marker));
  assert.ok(block, `${file}: no yaml block with ${marker}`);
  return parse(block) as Record<string, unknown[]>;
}

const errors = (schema: Parameters<typeof Value.Errors>[0], value: unknown) => [...Value.Errors(schema, value)].map((e) => `${e.path}: ${e.message}`);

test('docs/jwt.md: the provider and route example match the schema', () => {
  const doc = yamlBlock('jwt.md', 'requiredClaims');
  assert.deepEqual(errors(JwtProviderSchema, doc.jwtProviders?.[0]), []);
  assert.deepEqual(errors(RouteSchema, doc.routes?.[0]), []);
});

test('docs/configuration.md: the listener TLS example matches the schema', () => {
  const doc = yamlBlock('configuration.md', 'defaultHost');
  assert.deepEqual(errors(ListenerSchema, doc.listeners?.[0]), []);
});
