// The audit writer on real files: a restart continues the chain (from the live file, or from the newest rotated one
// when the live file is empty), a torn last line stops the start, checkpoints come by count, by time and at
// shutdown, and a reload cannot move the trail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AUDIT_BATCH_MS } from '../../../gateway/audit/batching.js';
import { ConfigError, loadConfigText } from '../../../gateway/config/load.js';
import { createLogger } from '../../../gateway/core/log.js';
import { auditSettings, createAuditTrail, sameAuditConfig } from '../../../gateway/audit/trail.js';
import type { AuditConfig } from '../../../gateway/config/operations-schema.js';
import type { Config } from '../../../gateway/config/schema.js';
import { ReloadRefused } from '../../../gateway/core/reloadable.js';
import { runAuditCommand } from '../../../gateway/audit/verify-command.js';

const logger = createLogger('silent');

function setup(t: import('node:test').TestContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-audit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = path.join(dir, 'audit.key');
  const pubFile = path.join(dir, 'audit.pub');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const file = path.join(dir, 'logs', 'audit.jsonl');
  const checkpoints = path.join(dir, 'logs', 'checkpoints.jsonl');
  const verify = (files: string[]) => {
    const out: string[] = [];
    const code = runAuditCommand(['verify', ...files, '--checkpoints', checkpoints, '--key', pubFile], { out: (l) => out.push(l), err: (l) => out.push(l) });
    return { code, out: out.join('\n') };
  };
  return { dir, file, checkpoints, keyFile, verify };
}

/** Until the records appended so far have been written. */
const batchLeft = () => delay(AUDIT_BATCH_MS + 10);
const lineCount = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length;

test('a restart continues the chain, also right after a rotation; checkpoints by count and at shutdown', async (t) => {
  const { file, checkpoints, keyFile, verify } = setup(t);
  const config = { file, maxFileBytes: 4096, checkpoints: { file: checkpoints, keyFile, everyRecords: 5 } };
  for (let run = 0; run < 3; run++) {
    const trail = createAuditTrail(config, { logger });
    for (let i = 0; i < 7; i++) {
      trail.append('ingress', { requestId: `r${run}-${i}`, status: 403, padding: 'x'.repeat(200) });
      await batchLeft();
    }
    trail.close();
  }
  const rotated = fs.readdirSync(path.dirname(file)).filter((f) => /^audit\.jsonl\.\d+$/.test(f)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  assert.ok(rotated.length >= 2);
  const files = [...rotated.map((f) => path.join(path.dirname(file), f)), file];
  const result = verify(files);
  assert.equal(result.code, 0, result.out);
  assert.match(result.out, /^ok: 21 records \(seq 0–20\) .*the last at seq 20 /);
  // Per run of seven records: one checkpoint at the fifth and one at shutdown.
  assert.equal(lineCount(checkpoints), 6);
});

test('a live file emptied by a rotation continues from the newest rotated file', async (t) => {
  const { file, keyFile, checkpoints, verify } = setup(t);
  const config = { file, maxFileBytes: 4096, checkpoints: { file: checkpoints, keyFile } };
  const first = createAuditTrail(config, { logger });
  // One flush bigger than the limit: the file is rotated right after it, leaving the live file empty.
  for (let i = 0; i < 20; i++) first.append('egress', { id: String(i), padding: 'y'.repeat(200) });
  await batchLeft();
  first.close();
  assert.equal(fs.statSync(file).size, 0);
  const second = createAuditTrail(config, { logger });
  second.append('egress', { id: 'after' });
  second.close();
  assert.equal(verify([`${file}.1`, file]).code, 0);
  assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as { seq: number }).seq, 20);
});

test('a torn last line stops the start with a clear message', (t) => {
  const { file } = setup(t);
  const trail = createAuditTrail({ file }, { logger });
  trail.append('ingress', { requestId: 'a' });
  trail.close();
  fs.appendFileSync(file, '{"seq":1,"prev":"');
  assert.throws(() => createAuditTrail({ file }, { logger }), /the last line of .* is not an audit record .*portcullis audit verify/);
});

test('a checkpoint every everySeconds while records arrive', async (t) => {
  const { file, keyFile, checkpoints } = setup(t);
  t.mock.timers.enable({ apis: ['setInterval'] });
  const trail = createAuditTrail({ file, checkpoints: { file: checkpoints, keyFile, everySeconds: 5 } }, { logger });
  trail.append('egress', { id: 'one' });
  t.mock.timers.tick(5_000);
  assert.equal(lineCount(checkpoints), 1);
  t.mock.timers.tick(5_000);
  assert.equal(lineCount(checkpoints), 1, 'no new records, no new checkpoint');
  trail.close();
});

test('the trail settings are read once: a reload that changes them is refused, pointing at /audit', async () => {
  assert.ok(sameAuditConfig({ file: 'a', onWriteFailure: 'continue' }, { onWriteFailure: 'continue', file: 'a' }));
  assert.ok(!sameAuditConfig({ file: 'a' }, { file: 'b' }));
  assert.ok(!sameAuditConfig(undefined, { file: 'a' }));
  const config = (audit?: AuditConfig) => ({ version: 'v1', listeners: [], upstreams: [], routes: [], ...(audit ? { audit } : {}) }) as Config;
  const part = auditSettings({ file: 'a' });
  await part.prepare(config({ file: 'a' }));
  await assert.rejects(part.prepare(config({ file: 'b' })), (err: Error) => err instanceof ReloadRefused && err.path === '/audit');
  await assert.rejects(part.prepare(config()), ReloadRefused);
});

test('a checkpoint key that is not Ed25519, or checkpoints in the audit file, are refused by the loader (so by validate)', (t) => {
  const { file, dir, checkpoints } = setup(t);
  const rsa = path.join(dir, 'rsa.key');
  fs.writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  assert.throws(() => createAuditTrail({ file, checkpoints: { file: checkpoints, keyFile: rsa } }, { logger }), /an Ed25519 key is needed, this is rsa/);
  const yaml = 'version: v1\nlisteners: []\nupstreams: []\nroutes: []\naudit: { file: a.jsonl, checkpoints: { file: a.jsonl, keyFile: rsa.key } }\n';
  assert.throws(
    () => loadConfigText(yaml, path.join(dir, 'portcullis.yaml')),
    (err: Error) => err instanceof ConfigError && /\/audit\/checkpoints\/keyFile: .*an Ed25519 key is needed/.test(err.message) && /\/audit\/checkpoints\/file: must not be the audit file itself/.test(err.message),
  );
});
