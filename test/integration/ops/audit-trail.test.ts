// The tamper-evident audit trail of a real gateway: ingress refusals and egress decisions from real traffic go into a
// hash-chained file that rotates with the chain running on, signed checkpoints go into their own file, and
// `portcullis audit verify` says ok for the run and names the first bad record for each kind of tampering. A full
// disk (/dev/full) is counted, logged, and either refuses traffic or not, as `onWriteFailure` says.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AUDIT_BATCH_MS } from '../../../gateway/audit/batching.js';
import { EMPTY_CHAIN, seal, type ChainHead } from '../../../gateway/audit/chain.js';
import { runAuditCommand } from '../../../gateway/audit/verify-command.js';
import { CLI, portcullis } from '../../helpers/cli.js';
import { commands } from '../../helpers/console-blocks.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { connectRequest, curl, rawRequest, startHttpUpstream, type Upstream } from '../egress/harness.js';

const OPERATIONS_DOC = fs.readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
const AUDIT_SECTION = OPERATIONS_DOC.slice(OPERATIONS_DOC.indexOf('## Audit trail'));

/** The key commands of docs/operations.md#audit-trail, run as shown (openssl). */
function keysFromDocs(): { privatePem: string; publicPem: string } {
  const commands = /^```sh\n([\s\S]*?)^```/m.exec(AUDIT_SECTION)![1]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-audit-key-'));
  try {
    execFileSync('bash', ['-euc', commands], { cwd: dir, stdio: 'pipe' });
    return { privatePem: fs.readFileSync(path.join(dir, 'audit-signing.key'), 'utf8'), publicPem: fs.readFileSync(path.join(dir, 'audit.pub'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function ed25519Keys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** `portcullis audit verify` in-process (the same function the CLI runs), on real files. */
function verify(args: string[]): { code: number; out: string } {
  const out: string[] = [];
  const code = runAuditCommand(['verify', ...args], { out: (l) => out.push(l), err: (l) => out.push(l) });
  return { code, out: out.join('\n') };
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
const writeLines = (file: string, list: readonly string[]) => fs.writeFileSync(file, `${list.join('\n')}\n`);

describe('the audit trail of a real run', () => {
  let gw: TestIngress;
  let plain: Upstream;
  /** The real files: the audit files oldest first (rotated ones, then the live one), the checkpoints, the key. */
  let files: { audit: string[]; checkpoints: string; publicKey: string };
  /** Every record of the run in one file, for the tampering (a record's line number is then its seq + 1). */
  let combined: string;
  let scratch: string;

  before(async () => {
    plain = await startHttpUpstream();
    const keys = keysFromDocs();
    gw = await startTestIngress((config, { writeFile }) => {
      writeFile('audit.key', keys.privatePem);
      config.audit = {
        file: 'trail/audit.jsonl',
        maxFileBytes: 4096,
        checkpoints: { file: 'trail/checkpoints.jsonl', keyFile: 'audit.key', everyRecords: 4 },
      };
      config.egress = {
        listener: { address: '127.0.0.1', port: 0 },
        sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
        allow: [{ name: 'plain', identities: ['local'], hosts: ['plain.test'], ports: [plain.port] }],
        deny: [{ name: 'never', hosts: ['*.forbidden.test'] }],
        staticHosts: [{ host: 'plain.test', addresses: ['127.0.0.1'] }],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
      };
    });
    const egressPort = gw.gateway.ports.get('egress')!;
    // Ingress: an allowed request (not recorded: ingressAllows is off) and refusals of four kinds, over and over.
    assert.equal((await request(gw.port, gw.caPem, { path: '/public/hello' })).status, 200);
    for (let i = 0; i < 4; i++) {
      assert.equal((await request(gw.port, gw.caPem, { path: '/api/orders' })).status, 403);
      assert.equal((await request(gw.port, gw.caPem, { path: '/admin/users' })).status, 403);
      assert.equal((await request(gw.port, gw.caPem, { path: '/nowhere' })).status, 404);
      assert.equal((await request(gw.port, gw.caPem, { path: '/api/orders', headers: { authorization: 'Bearer not.a.token' } })).status, 401);
      // Egress: a denial and an allowed forwarded request.
      const denied = await rawRequest(egressPort, connectRequest('api.forbidden.test:443'));
      assert.equal(denied.status, 403);
      const allowed = await curl(['-s', '-x', `http://127.0.0.1:${egressPort}`, `http://plain.test:${plain.port}/x`]);
      assert.equal(allowed.code, 0, allowed.stderr);
    }
    await gw.gateway.close(1000);
    const trail = path.join(gw.dir, 'trail');
    const rotated = fs.readdirSync(trail).filter((f) => /^audit\.jsonl\.\d+$/.test(f)).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
    files = {
      audit: [...rotated, 'audit.jsonl'].map((f) => path.join(trail, f)),
      checkpoints: path.join(trail, 'checkpoints.jsonl'),
      publicKey: gw.writeFile('audit.pub', keys.publicPem),
    };
    scratch = fs.mkdtempSync(path.join(gw.dir, 'tampered-'));
    combined = path.join(scratch, 'all.jsonl');
    writeLines(combined, files.audit.flatMap(lines));
  });

  after(async () => {
    await gw.close();
    await plain.close();
  });

  const verifyArgs = (records = combined, checkpoints = files.checkpoints, key = files.publicKey) => [records, '--checkpoints', checkpoints, '--key', key];
  /** A copy of all the records (or of the checkpoints) changed by `edit`. */
  const tampered = (name: string, from: string, edit: (list: string[]) => string[]): string => {
    const file = path.join(scratch, name);
    writeLines(file, edit(lines(from)));
    return file;
  };

  test('every egress decision and every ingress refusal is one record, in one chain across the rotation', () => {
    assert.ok(files.audit.length >= 3, 'the 4 KiB file was rotated, more than once');
    const records = files.audit.flatMap(lines).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(records.map((r) => r.seq), records.map((_, i) => i));
    const ingress = records.filter((r) => r.source === 'ingress');
    const egress = records.filter((r) => r.source === 'egress');
    assert.equal(ingress.length, 16, 'four refusals, four times; the allowed request is not recorded');
    assert.equal(egress.length, 8);
    assert.deepEqual(new Set(ingress.map((r) => r.code)), new Set(['GW_AUTHZ_DENIED', 'GW_ROUTE_NOT_FOUND', 'GW_AUTHN_INVALID_TOKEN']));
    const admin = ingress.find((r) => r.path === '/admin/users');
    assert.deepEqual([admin?.code, admin?.reason, admin?.status], ['GW_AUTHZ_DENIED', 'denied_by_policy: admin-deny/rules[0]', 403]);
    assert.equal(admin?.listener, 'edge');
    assert.match(String(admin?.requestId), /^[0-9a-f-]{36}$/);
    assert.deepEqual(new Set(egress.map((r) => `${String(r.allow)} ${String(r.host)}`)), new Set(['false api.forbidden.test', 'true plain.test']));
    for (const r of records) assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The chain runs on: each file's first record chains to the previous file's last.
    const [first, second] = files.audit;
    assert.equal((JSON.parse(lines(second!)[0]!) as { prev: string }).prev, (JSON.parse(lines(first!).at(-1)!) as { hash: string }).hash);
  });

  test('`portcullis audit verify` says ok on the run, with the checkpoints signed (and flushed at shutdown) covering every record', async () => {
    const cli = await portcullis(['audit', 'verify', ...files.audit, '--checkpoints', files.checkpoints, '--key', files.publicKey]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, new RegExp(`^ok: 24 records \\(seq 0–23\\) in ${files.audit.length} files, chain intact; \\d+ checkpoints verified, the last at seq 23 \\(`));
    assert.match(verify(files.audit).out, /^ok: 24 records .*no checkpoints checked/);
    // Files given out of order break at the first record out of place.
    const [first, second, ...rest] = files.audit;
    assert.match(verify([second!, first!, ...rest]).out, new RegExp(`^FAIL ${first}:1: `));
  });

  test('one flipped byte names that record', async () => {
    const index = lines(combined).findIndex((l) => l.includes('"status":403'));
    const file = tampered('flip.jsonl', combined, (list) => list.map((l, i) => (i === index ? l.replace('"status":403', '"status":203') : l)));
    const cli = await portcullis(['audit', 'verify', ...verifyArgs(file)]);
    assert.equal(cli.code, 1);
    assert.equal(cli.stdout.trim(), `FAIL ${file}:${index + 1}: record ${index}: hash does not match the record (altered)`);
    // A flipped byte in the hash itself, or one that breaks the JSON, is named the same way.
    const inHash = tampered('flip-hash.jsonl', combined, (list) => list.map((l, i) => (i === 1 ? l.replace(/"hash":"(.)/, (_, c: string) => `"hash":"${c === 'a' ? 'b' : 'a'}`) : l)));
    assert.match(verify(verifyArgs(inHash)).out, new RegExp(`^FAIL ${inHash}:2: `));
    const inSyntax = tampered('flip-syntax.jsonl', combined, (list) => list.map((l, i) => (i === 1 ? l.replace('{', '[') : l)));
    assert.match(verify(verifyArgs(inSyntax)).out, new RegExp(`^FAIL ${inSyntax}:2: record 1: not a JSON record`));
  });

  test('a deleted line names the record that took its place', () => {
    const file = tampered('delete.jsonl', combined, (list) => list.filter((_, i) => i !== 9));
    const result = verify(verifyArgs(file));
    assert.equal(result.code, 1);
    assert.equal(result.out, `FAIL ${file}:10: record 9: seq 10 where 9 was due (a record is missing, inserted or moved)`);
  });

  test('two reordered lines name the first of them', () => {
    const file = tampered('reorder.jsonl', combined, (list) => [...list.slice(0, 5), list[6]!, list[5]!, ...list.slice(7)]);
    const result = verify(verifyArgs(file));
    assert.equal(result.code, 1);
    assert.equal(result.out, `FAIL ${file}:6: record 5: seq 6 where 5 was due (a record is missing, inserted or moved)`);
  });

  test('a truncated tail: a torn last line is named; whole lines cut are named by the checkpoint that signed them', () => {
    const torn = path.join(scratch, 'torn.jsonl');
    const text = fs.readFileSync(combined, 'utf8');
    fs.writeFileSync(torn, text.slice(0, text.length - 20));
    assert.equal(verify(verifyArgs(torn)).out, `FAIL ${torn}:24: record 23: not a JSON record (cut short or altered)`);

    const cut = tampered('cut.jsonl', combined, (list) => list.slice(0, -2));
    const result = verify(verifyArgs(cut));
    assert.equal(result.code, 1);
    // The first checkpoint past the cut names it (records are written, so checkpointed, in batches: which one is
    // first depends on how the run's records were batched).
    const signed = lines(files.checkpoints).map((l) => (JSON.parse(l) as { seq: number }).seq);
    const first = signed.findIndex((seq) => seq > 21);
    assert.equal(result.out, `FAIL ${files.checkpoints}:${first + 1}: checkpoint: signs up to seq ${signed[first]}, but the records end at seq 21: records 22–${signed[first]} were cut from the end`);
    // Without the checkpoints, a clean cut cannot show: the chain itself is intact (docs/operations.md says so).
    assert.equal(verify([cut]).code, 0);
  });

  test('a bad signature, a wrong key and a rewritten chain are named at the checkpoint', () => {
    const forged = tampered('forged.jsonl', files.checkpoints, (list) => list.map((l, i) => (i === 0 ? l.replace(/"sig":"(.)/, (_, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`) : l)));
    const result = verify(verifyArgs(combined, forged));
    assert.equal(result.code, 1);
    assert.match(result.out, new RegExp(`^FAIL ${forged}:1: checkpoint: signature is not valid for this key`));
    const otherKey = path.join(scratch, 'other.pub');
    fs.writeFileSync(otherKey, ed25519Keys().publicPem);
    assert.match(verify(verifyArgs(combined, files.checkpoints, otherKey)).out, /:1: checkpoint: signature is not valid/);

    // Whoever can write the file can recompute every hash after an edit: the chain verifies, the signature does not.
    const original = lines(combined).map((l) => JSON.parse(l) as Record<string, unknown>);
    let head: ChainHead = EMPTY_CHAIN;
    const rewritten = original.map((record, i) => {
      const { seq: _seq, prev: _prev, hash: _hash, ...fields } = record;
      const sealed = seal(head, i === 20 ? { ...fields, code: 'GW_NOTHING_TO_SEE' } : fields);
      head = sealed.head;
      return sealed.line;
    });
    const file = path.join(scratch, 'rewritten.jsonl');
    writeLines(file, rewritten);
    assert.equal(verify([file]).code, 0);
    assert.match(verify(verifyArgs(file)).out, /^FAIL .*checkpoints\.jsonl:\d+: checkpoint: record seq \d+ is not the one signed: the chain was rewritten up to it$/);
  });

  test('a command line it does not understand is a usage error (exit 2)', () => {
    assert.equal(verify([]).code, 2);
    assert.equal(verify([combined, '--key', files.publicKey]).code, 2, '--key without --checkpoints');
    assert.equal(runAuditCommand(['check'], { out: () => undefined, err: () => undefined }), 2);
  });
});

describe('a full disk', () => {
  const deviceFull = fs.existsSync('/dev/full') ? false : '/dev/full is missing on this system: the disk-full path is not tested';

  for (const mode of ['refuse', 'continue'] as const) {
    test(`onWriteFailure: ${mode} — counted, logged, and traffic ${mode === 'refuse' ? 'refused (503)' : 'served'}`, { skip: deviceFull }, async () => {
      const gw = await startTestIngress((config) => {
        config.audit = { file: '/dev/full', onWriteFailure: mode };
        config.egress = { listener: { address: '127.0.0.1', port: 0 }, allow: [] };
      });
      try {
        assert.equal((await request(gw.port, gw.caPem, { path: '/nowhere' })).status, 404);
        await delay(AUDIT_BATCH_MS + 20);
        const next = await request(gw.port, gw.caPem, { path: '/public/hello' });
        if (mode === 'refuse') {
          assert.equal(next.status, 503);
          assert.deepEqual([next.json().code, next.json().reason], ['GW_UNAVAILABLE', 'audit_unavailable']);
        } else {
          assert.equal(next.status, 200);
        }
        // The egress proxy too: refused before any policy runs, or decided as usual (no rule: 407 for anonymous).
        const egress = await rawRequest(gw.gateway.ports.get('egress')!, connectRequest('example.com:443'));
        assert.equal(egress.status, mode === 'refuse' ? 503 : 407);
        const page = await gw.gateway.metrics.registry.metrics();
        assert.match(page, /^portcullis_audit_write_failures_total [1-9]\d*$/m);
        const failed = gw.logs.filter((l) => l.event === 'AUDIT_WRITE_FAILED');
        assert.equal(failed.length, 1, 'one loud line per outage, not one per record');
        assert.equal(failed[0]?.level, 'error');
        assert.equal(failed[0]?.refusing, mode === 'refuse');
      } finally {
        await gw.close();
      }
    });
  }
});

test('a reload that changes the audit section is refused whole; one that keeps it applies', async () => {
  const gw = await startTestIngress((config) => {
    config.audit = { file: 'trail/audit.jsonl' };
  });
  try {
    const config = gw.loaded.config;
    await assert.rejects(gw.gateway.reload({ ...config, audit: { file: path.join(gw.dir, 'elsewhere.jsonl') } }), /^ReloadRefused: the audit trail settings change only with a restart$/);
    await assert.rejects(gw.gateway.reload({ ...config, audit: undefined as never }), /audit trail settings/);
    await gw.gateway.reload({ ...config, routes: config.routes.map((r) => (r.name === 'public' ? { ...r, match: { path: { prefix: '/open' } } } : r)) });
    assert.equal((await request(gw.port, gw.caPem, { path: '/public/hello' })).status, 404, 'the rest of the reload applied');
    assert.equal((await request(gw.port, gw.caPem, { path: '/open/hello' })).status, 200);
  } finally {
    await gw.close();
  }
});

describe('the verify transcript of docs/operations.md', () => {
  test('runs as shown, on the files of the run it describes, and prints what the doc shows (times aside)', async () => {
    const keys = keysFromDocs();
    const plain = await startHttpUpstream();
    // The doc's run: three rounds of an ingress request no policy allows, one with no route, an egress CONNECT and
    // an absolute-form request to unlisted hosts; maxFileBytes 4096, everyRecords 5.
    const gw = await startTestIngress((config, { writeFile }) => {
      writeFile('audit.key', keys.privatePem);
      config.audit = { file: 'trail/audit.jsonl', maxFileBytes: 4096, checkpoints: { file: 'trail/checkpoints.jsonl', keyFile: 'audit.key', everyRecords: 5 } };
      config.egress = {
        listener: { address: '127.0.0.1', port: 0 },
        sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
        allow: [{ name: 'plain', identities: ['local'], hosts: ['plain.test'], ports: [plain.port] }],
      };
    });
    try {
      const egressPort = gw.gateway.ports.get('egress')!;
      // Each record written before the next request (a batch each), so checkpoints fall where the doc shows them.
      const written = () => delay(AUDIT_BATCH_MS + 10);
      for (let round = 1; round <= 3; round++) {
        assert.equal((await request(gw.port, gw.caPem, { path: '/api/orders', headers: { 'x-request-id': `doc-${round}-api` } })).status, 403);
        await written();
        assert.equal((await request(gw.port, gw.caPem, { path: '/nowhere', headers: { 'x-request-id': `doc-${round}-none` } })).status, 404);
        await written();
        assert.equal((await rawRequest(egressPort, connectRequest('api.unlisted.test:443'))).status, 403);
        await written();
        const absolute = await rawRequest(egressPort, 'GET http://www.unlisted.test/ HTTP/1.1\r\nHost: www.unlisted.test\r\nConnection: close\r\n\r\n');
        assert.equal(absolute.status, 403);
        absolute.socket.destroy();
        await written();
      }
      await gw.gateway.close(1000);
      const trail = path.join(gw.dir, 'trail');
      fs.writeFileSync(path.join(trail, 'audit.pub'), keys.publicPem);

      const transcript = /^```console\n([\s\S]*?)^```/m.exec(AUDIT_SECTION)![1]!;
      const steps = commands(transcript);
      // One shell for the whole transcript, so `echo $?` sees the command before it; a record separator after each.
      const script = [
        `portcullis() { ${JSON.stringify(process.execPath)} --import ${JSON.stringify(import.meta.resolve('tsx'))} ${JSON.stringify(CLI)} "$@"; }`,
        ...steps.map(({ command }) => `${command} 2>&1; rc=$?; printf '\\036'; (exit $rc)`),
      ].join('\n');
      const ran = spawnSync('bash', ['-c', script], { cwd: trail, encoding: 'utf8' });
      const outputs = ran.stdout.split('\x1e').slice(0, steps.length);
      const time = (text: string) => text.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME');
      assert.deepEqual(
        outputs.map(time),
        steps.map(({ output }) => time(output)),
        `the transcript's commands printed something else (stderr: ${ran.stderr})`,
      );
    } finally {
      await gw.close();
      await plain.close();
    }
  });
});
