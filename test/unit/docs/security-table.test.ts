// docs/security.md names, for each attack, the test that tries it: every named file must exist, and one of each
// row's files must name the attack (its CVE or other identifier), so the table cannot drift from the suite.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const rows = fs
  .readFileSync(path.join(ROOT, 'docs/security.md'), 'utf8')
  .split('\n')
  .filter((line) => line.startsWith('| ') && !line.startsWith('| attack') && !line.startsWith('|---'))
  .map((line) => {
    const cells = line.split(' | ');
    return { attack: cells[0]!.slice(2), files: [...line.matchAll(/`(test\/[^`]+\.ts)`/g)].map((m) => m[1]!) };
  });

test('docs/security.md: every attack names a test file, and the file names the attack', () => {
  assert.ok(rows.length >= 25, `${rows.length} rows`);
  for (const { attack, files } of rows) {
    assert.ok(files.length > 0, `${attack}: no test named`);
    const texts = files.map((file) => {
      assert.ok(fs.existsSync(path.join(ROOT, file)), `${attack}: ${file} does not exist`);
      return fs.readFileSync(path.join(ROOT, file), 'utf8').toLowerCase();
    });
    assert.ok(texts.some((text) => text.includes(attack.toLowerCase())), `${attack}: none of ${files.join(', ')} mentions it`);
  }
});
