// The policy examples' gateway configs (policies/examples/tests/*.gateway.yaml) made runnable: copied with their
// policy files into a folder laid out as the repository is, with the certificates and JWKS they name generated.
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { namedInputs } from '../../gateway/config/load.js';
import type { Config } from '../../gateway/config/schema.js';
import { writeMissingInputs } from './config-material.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const EXAMPLES = 'policies/examples';

/** A folder holding `policies/examples/**` with every input file the example gateways name; returns its path. */
export function policyExamplesFolder(parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, 'portcullis-examples-'));
  cpSync(join(ROOT, EXAMPLES), join(dir, EXAMPLES), { recursive: true });
  return dir;
}

/** Generates the certificates (trust domain cluster.local) and JWKS the example gateway names. */
export function exampleGateway(dir: string, example: string): string {
  const file = join(dir, EXAMPLES, 'tests', `${example}.gateway.yaml`);
  const config = parse(readFileSync(file, 'utf8')) as Config;
  writeMissingInputs(namedInputs(config, file), 'cluster.local');
  return file;
}
