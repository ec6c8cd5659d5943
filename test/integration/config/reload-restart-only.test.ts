// Settings the process reads once, at start (`log`, `reload`), and the audit trail's checkpoint key: a reload that
// changes them is refused, located at the field, and the running config stays; before, it answered "ok" while the
// old value went on working.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startGateway, type Gateway } from '../../../gateway/app.js';
import { loadConfigFile } from '../../../gateway/config/load.js';
import type { Config } from '../../../gateway/config/schema.js';
import { createLogger } from '../../../gateway/core/log.js';
import { createReloader, type Reloader } from '../../../gateway/reload.js';
import { configFixtures } from '../../helpers/config-material.js';
import { onFreePorts } from '../../helpers/start.js';

const ed25519Pem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('a reload refuses what only a restart applies', () => {
  let file: string;
  let auditDir: string;
  let keyFile: string;
  let original: Record<string, unknown>;
  let gateway: Gateway;
  let reloader: Reloader;

  before(async () => {
    // Beside the fixture, whose relative paths name the certificates and policy files it needs.
    file = join(configFixtures(), 'restart-only.yaml');
    // On free ports in the file itself, so the reloads that must succeed bind nothing new.
    original = onFreePorts(parse(readFileSync(join(configFixtures(), 'good.yaml'), 'utf8')) as Config) as unknown as Record<string, unknown>;
    auditDir = mkdtempSync(join(tmpdir(), 'portcullis-restart-only-'));
    keyFile = join(auditDir, 'checkpoint-key.pem');
    writeFileSync(keyFile, ed25519Pem());
    original.audit = { file: join(auditDir, 'audit.jsonl'), checkpoints: { file: join(auditDir, 'checkpoints.jsonl'), keyFile } };
    writeFileSync(file, stringify(original));
    const initial = loadConfigFile(file);
    const logger = createLogger('silent');
    gateway = await startGateway(initial.config, { logger, fetch: () => Promise.reject(new Error('no network in tests')) });
    reloader = createReloader({ load: () => loadConfigFile(file), parts: [gateway], initial, logger, watchIntervalMs: 0 });
  });
  after(async () => {
    reloader.close();
    await gateway.close(0);
    rmSync(file, { force: true });
    rmSync(auditDir, { recursive: true, force: true });
  });

  for (const [field, change] of [
    ['/log', { log: { level: 'warn' } }],
    ['/reload', { reload: { watchIntervalMs: 5_000 } }],
  ] as const) {
    test(`${field}: refused, located, and an unchanged config still reloads`, async () => {
      writeFileSync(file, stringify({ ...original, ...change }));
      const refused = await reloader.reload('test');
      assert.ok(!refused.ok && typeof refused.issues !== 'string', JSON.stringify(refused));
      assert.deepEqual(
        refused.issues.map((i) => [i.path, i.message]),
        [[field, `the ${field.slice(1)} settings change only with a restart`]],
      );
      writeFileSync(file, stringify(original));
      assert.equal((await reloader.reload('test')).ok, true);
    });
  }

  test('/audit/checkpoints/keyFile: a new key in the same file is refused (the trail signs with the key it read at start)', async () => {
    const running = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, ed25519Pem());
    const refused = await reloader.reload('test');
    assert.ok(!refused.ok && typeof refused.issues !== 'string', JSON.stringify(refused));
    assert.deepEqual(
      refused.issues.map((i) => [i.path, i.message]),
      [['/audit/checkpoints/keyFile', 'the checkpoint signing key changes only with a restart']],
    );
    writeFileSync(keyFile, running);
    assert.equal((await reloader.reload('test')).ok, true);
  });
});
