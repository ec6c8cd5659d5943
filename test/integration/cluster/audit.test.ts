// The audit trail in multi-process mode, run as a user would (`portcullis run --workers 2`): both workers' records
// go into one hash chain that the primary writes, every answered request is in it after a SIGTERM that caught
// requests in flight, and the real `portcullis audit verify` accepts the files with the last checkpoint at the last
// record. A full disk under `onWriteFailure: refuse` makes every worker refuse, and is counted once, by the primary.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { AuditConfig } from '../../../gateway/config/operations-schema.js';
import { portcullis } from '../../helpers/cli.js';
import { embeddedConfig, startCluster, type ClusterRun, type EmbeddedConfig } from '../../helpers/cluster.js';
import { request } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';
import { assertPromtoolAccepts } from '../../helpers/promtool.js';
import { connectRequest, rawRequest } from '../egress/harness.js';

/** A cluster on the embedded config (egress proxy included) with the given `audit` section. */
async function auditedCluster(stateDir: string, audit: (dir: string) => AuditConfig): Promise<{ run: ClusterRun; at: EmbeddedConfig }> {
  const at = await embeddedConfig(stateDir, { egress: true });
  const configFile = path.join(stateDir, 'portcullis.yaml');
  fs.writeFileSync(configFile, stringify({ ...at.config, audit: audit(stateDir) }));
  return { run: await startCluster(configFile, stateDir, at), at };
}

/** Bursts of new connections until the kernel has given some to each worker; every answer must have `status`. */
async function untilBothWorkers(run: ClusterRun, send: () => Promise<{ status: number }[]>, status: number): Promise<number> {
  const [before1, before2] = await run.perWorker();
  let answered = 0;
  for (let round = 0; round < 12; round++) {
    const answers = await send();
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([status]));
    answered += answers.length;
    const [w1, w2] = await run.perWorker();
    if (w1! > before1! && w2! > before2!) return answered;
  }
  assert.fail('the kernel never gave a connection to both workers');
}

describe('the audit trail of `run --workers 2`', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-audit-'));
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test('both workers chain into one file; SIGTERM loses nothing; audit verify says ok up to a last checkpoint at the last record', async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    fs.writeFileSync(path.join(stateDir, 'audit.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(path.join(stateDir, 'audit.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const files = { audit: path.join(stateDir, 'trail/audit.jsonl'), checkpoints: path.join(stateDir, 'trail/checkpoints.jsonl') };
    const { run, at } = await auditedCluster(stateDir, () => ({
      file: files.audit,
      ingressAllows: true,
      checkpoints: { file: files.checkpoints, keyFile: path.join(stateDir, 'audit.key'), everyRecords: 25 },
    }));
    try {
      // Each request carries its own id, so the file can be checked for exactly the requests that were answered.
      let next = 0;
      const sent: string[] = [];
      const id = () => {
        sent.push(`audit-${++next}`);
        return { 'x-request-id': `audit-${next}` };
      };
      await untilBothWorkers(run, async () => [...(await run.burst(10, '/public/a', id)), ...(await run.burst(6, '/public/b', id))], 200);
      // A refusal, also from both workers over the rounds, and three egress denials (a source of its own).
      await untilBothWorkers(run, () => run.burst(8, '/api/orders', id), 403);
      const egressPort = at.config.egress!.listener.port;
      for (let i = 0; i < 3; i++) assert.equal((await rawRequest(egressPort, connectRequest('forbidden.test:443'))).status, 403);

      const page = await (await fetch(`${at.admin}/metrics`)).text();
      assert.deepEqual(page.match(/^portcullis_audit_write_failures_total.*$/gm), ['portcullis_audit_write_failures_total 0'], 'one series, the primary’s');
      assertPromtoolAccepts(t, page);

      // SIGTERM with requests in flight: they are answered, and recorded, before the primary exits.
      const inFlight = Promise.all(Array.from({ length: 8 }, () => request(at.edge, at.caPem, { path: '/public/slow?delay=1500', headers: id() })));
      await sleep(500);
      run.primary.kill('SIGTERM');
      assert.deepEqual(
        (await inFlight).map((r) => r.status),
        Array(8).fill(200),
      );
      assert.equal(await run.exit, 0);

      const records = fs
        .readFileSync(files.audit, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { seq: number; source: string; requestId?: string; worker: number });
      assert.deepEqual(
        records.map((r) => r.seq),
        records.map((_, i) => i),
      );
      const ingress = records.filter((r) => r.source === 'ingress');
      assert.deepEqual(ingress.map((r) => r.requestId).sort(), [...sent].sort(), 'every answered request, once');
      assert.equal(records.filter((r) => r.source === 'egress').length, 3);
      assert.deepEqual(new Set(ingress.map((r) => r.worker)), new Set([1, 2]));

      const verify = await portcullis(['audit', 'verify', files.audit, '--checkpoints', files.checkpoints, '--key', path.join(stateDir, 'audit.pub')]);
      const last = records.length - 1;
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, new RegExp(`^ok: ${records.length} records \\(seq 0–${last}\\) in 1 file, chain intact; \\d+ checkpoints verified, the last at seq ${last} `));
      console.log(`cluster audit: ${verify.stdout.trim()}`);
    } finally {
      if (run.primary.exitCode === null) run.primary.kill('SIGKILL');
    }
  });
});

describe('a full disk under `run --workers 2`', () => {
  const deviceFull = fs.existsSync('/dev/full') ? false : '/dev/full is missing on this system: the disk-full path is not tested';
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-audit-full-'));
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  test('onWriteFailure: refuse — every worker refuses (503 audit_unavailable), counted and logged by the primary', { skip: deviceFull }, async () => {
    const { run, at } = await auditedCluster(stateDir, () => ({ file: '/dev/full', onWriteFailure: 'refuse' }));
    try {
      assert.equal((await request(at.edge, at.caPem, { path: '/nowhere' })).status, 404);
      // The primary learns of the failure when it writes the first record, then tells the workers.
      await until('the first refusal', async () => ((await request(at.edge, at.caPem, { path: '/public/x' })).status === 503 ? true : undefined));
      await untilBothWorkers(run, () => run.burst(10, '/public/x'), 503);
      const refused = await request(at.edge, at.caPem, { path: '/public/x' });
      assert.deepEqual([refused.json().code, refused.json().reason], ['GW_UNAVAILABLE', 'audit_unavailable']);
      const page = await (await fetch(`${at.admin}/metrics`)).text();
      assert.match(page, /^portcullis_audit_write_failures_total [1-9]\d*$/m);
      const failures = () => run.logLines().filter((l) => l.event === 'AUDIT_WRITE_FAILED' && l.refusing === true);
      // stdout lines leave in batches (up to 100 ms apart): wait for the line, then for any second one a batch may hold.
      await until('the AUDIT_WRITE_FAILED line', () => (failures().length > 0 ? true : undefined), 5_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const failed = failures();
      assert.equal(failed.length, 1, 'one loud line per outage, from the primary');
      assert.equal(failed[0]!.worker, undefined);
      run.primary.kill('SIGTERM');
      assert.equal(await run.exit, 0);
    } finally {
      if (run.primary.exitCode === null) run.primary.kill('SIGKILL');
    }
  });
});
