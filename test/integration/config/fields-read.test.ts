// Every documented field does something: each field of the schema must be read by the gateway when it starts from
// a config that sets every field (test/fixtures/config/every-field.yaml). Reads are recorded by a Proxy around the
// loaded config handed to the gateway, its admin plane and the process set-up, never the loader (which reads every
// field only to check it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { ConfigSchema } from '../../../gateway/config/schema.js';
import { configFixtures } from '../../helpers/config-material.js';
import { onFreePorts, startAndStop } from '../../helpers/start.js';

/**
 * Fields read outside the gateway object, each with the file that reads it and the expression it reads it by
 * (checked below, so the list cannot rot), or fields another issue implements.
 */
const READ_ELSEWHERE: Record<string, { file: string; reads: string } | { pending: string }> = {
  '.version': { file: 'gateway/config/schema.ts', reads: "version: Type.Literal('v1')" },
  '.stateDir': { file: 'gateway/cli.ts', reads: 'loaded.config.stateDir' },
  '.log.level': { file: 'gateway/cli.ts', reads: 'loaded.config.log?.level' },
  '.reload.watchIntervalMs': { file: 'gateway/cli.ts', reads: 'loaded.config.reload?.watchIntervalMs' },
  '.policyFiles[]': { file: 'gateway/config/load.ts', reads: 'config.policyFiles' },
  '.dev.demoBackendPort': { file: 'gateway/dev/helpers-plan.ts', reads: 'dev?.demoBackendPort' },
  '.dev.tokenIssuerPort': { file: 'gateway/dev/helpers-plan.ts', reads: 'dev?.tokenIssuerPort' },
  '.shutdown.drainMs': { file: 'gateway/cli.ts', reads: 'config.shutdown?.drainMs' },
  // When a dry-run began changes nothing at run time: `portcullis lint` reads it (dry-run-too-long).
  '.policies[].dryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: p.dryRunSince' },
  '.jwtProviders[].dryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: p.dryRunSince' },
  '.routes[].authenticationDryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: r.authenticationDryRunSince' },
  '.rateLimits[].dryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: l.dryRunSince' },
  '.egress.allow[].dryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: r.dryRunSince' },
  '.egress.allow[].byteBudget.dryRunSince': { file: 'gateway/tools/lint.ts', reads: 'since: r.byteBudget.dryRunSince' },
};

/** Every leaf path of the schema: `.a.b`, with `[]` for array items; both branches of a union. */
function schemaPaths(schema: TSchema, path = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(schema.anyOf)) for (const branch of schema.anyOf as TSchema[]) schemaPaths(branch, path, out);
  else if (schema.type === 'object' && schema.properties) {
    for (const [key, value] of Object.entries(schema.properties as Record<string, TSchema>)) schemaPaths(value, `${path}.${key}`, out);
  } else if (schema.type === 'array' && schema.items) schemaPaths(schema.items as TSchema, `${path}[]`, out);
  else out.add(path);
  return out;
}

/** A deep read-recording view of `value`: each property read adds its path (array items as `[]`). */
function recording<T extends object>(value: T, reads: Set<string>, path = ''): T {
  return new Proxy(value, {
    get(target, key, receiver) {
      const result: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !Object.hasOwn(target, key)) return result;
      const child = Array.isArray(target) ? (/^\d+$/.test(key) ? `${path}[]` : undefined) : `${path}.${key}`;
      if (child === undefined) return result;
      reads.add(child);
      return typeof result === 'object' && result !== null ? recording(result, reads, child) : result;
    },
  });
}

test('every schema field is read by the gateway, or listed with the place that reads it', async () => {
  const { config } = loadConfigFile(join(configFixtures(), 'every-field.yaml'));
  const reads = new Set<string>();
  // Copied before it is watched: only what starting the gateway reads counts.
  await startAndStop(recording(onFreePorts(config), reads));

  const leaves = schemaPaths(ConfigSchema);
  // A leaf counts as read when it, or a value inside it (an array item, a union branch's field), was read.
  const unread = [...leaves].filter((leaf) => !reads.has(leaf) && !(leaf in READ_ELSEWHERE));
  assert.deepEqual(unread, [], 'fields accepted by the schema that nothing reads');
  for (const [leaf, where] of Object.entries(READ_ELSEWHERE)) {
    assert.ok(leaves.has(leaf), `${leaf} is no longer in the schema`);
    if ('file' in where) assert.ok(readFileSync(where.file, 'utf8').includes(where.reads), `${where.file} no longer reads ${leaf} as ${where.reads}`);
  }
});
