// values.schema.json's `config` part is generated from the gateway schema; a stale copy would let helm accept
// configs the gateway refuses (or refuse valid ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { VALUES_SCHEMA, valuesSchemaText } from '../../../scripts/helm-values-schema.js';

test('the committed values.schema.json is what npm run helm:schema writes', () => {
  const committed = readFileSync(VALUES_SCHEMA, 'utf8');
  assert.equal(committed, valuesSchemaText(committed), 'run npm run helm:schema and commit the result');
});
