// Writes the `config` part of helm/portcullis/values.schema.json from the gateway's own schema (TypeBox), so that
// `helm lint --strict`, `helm install` and `helm upgrade` refuse a gateway config the gateway would refuse, before a
// pod ever sees it. Run by `npm run helm:schema`; test/unit/helm/values-schema.test.ts fails when the committed
// file is stale. The rest of values.schema.json (the chart's own values) is written by hand.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../gateway/config/schema.js';

export const VALUES_SCHEMA = fileURLToPath(new URL('../helm/portcullis/values.schema.json', import.meta.url));

const CONFIG_DESCRIPTION =
  'The gateway configuration (docs/configuration.md), generated from the gateway schema by scripts/helm-values-schema.ts: ' +
  'what the chart accepts here is what `portcullis validate` accepts, except the checks that need the files it names.';

/** values.schema.json text with its `config` property replaced by the gateway schema. */
export function valuesSchemaText(current: string): string {
  const schema = JSON.parse(current) as { properties: Record<string, unknown> };
  // JSON round trip: TypeBox keeps its own markers under symbols, which JSON drops.
  schema.properties.config = { description: CONFIG_DESCRIPTION, ...(JSON.parse(JSON.stringify(ConfigSchema)) as object) };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(VALUES_SCHEMA, valuesSchemaText(readFileSync(VALUES_SCHEMA, 'utf8')));
  console.log(`wrote ${VALUES_SCHEMA}`);
}
