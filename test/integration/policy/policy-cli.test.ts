// The policy tools as users run them: the real `portcullis` process on the shipped case files (the policy
// examples and the embedded default config), the output formats, and the exit codes CI relies on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { portcullis } from '../../helpers/cli.js';
import { exampleGateway as makeExampleGateway, policyExamplesFolder } from '../../helpers/policy-examples.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE_TESTS = join(ROOT, 'policies/examples/tests');
let work: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-policy-cli-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** The example's gateway config with its certificates generated, in a copy of the examples folder. */
function exampleGateway(example: string): string {
  return makeExampleGateway(policyExamplesFolder(work), example);
}

const examples = readdirSync(EXAMPLE_TESTS).filter((f) => f.endsWith('.cases.yaml')).map((f) => f.replace('.cases.yaml', ''));

describe('shipped policy cases pass', () => {
  test('every policy example has cases', () => {
    const policies = readdirSync(join(ROOT, 'policies/examples')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace('.yaml', ''));
    assert.deepEqual(examples.sort(), policies.sort());
  });
  for (const example of examples) {
    test(`policies/examples/${example}`, async () => {
      const r = await portcullis(['test', '-c', exampleGateway(example), join(EXAMPLE_TESTS, `${example}.cases.yaml`)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, / passed, 0 failed\n$/);
    });
  }
  test('the embedded default config', async () => {
    const r = await portcullis(['test', '--state-dir', join(work, 'state'), join(ROOT, 'gateway/config/default.cases.yaml')], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('portcullis test', () => {
  let config: string;
  let cases: string;
  before(() => {
    config = exampleGateway('require-jwt-for-api');
    cases = join(work, 'mismatch.cases.yaml');
    writeFileSync(
      cases,
      stringify({
        cases: [
          { name: 'right', request: { url: 'https://api.example.com/healthz' }, expect: { decision: 'forward', rule: 'health' } },
          { name: 'wrong <one>', request: { url: 'https://api.example.com/api/x' }, expect: { decision: 'forward', headers: { 'x-user': 'alice' } } },
        ],
      }),
    );
  });

  test('a mismatch exits 1 with expected and got', async () => {
    const r = await portcullis(['test', '-c', config, cases]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /PASS .*: right\n/);
    assert.match(r.stdout, /FAIL .*: wrong <one>\n {5}decision: expected "forward", got "refuse"\n {5}headers: expected forwarded headers, but the request is not forwarded/);
    assert.match(r.stdout, /1 passed, 1 failed\n$/);
  });

  test('TAP output', async () => {
    const r = await portcullis(['test', '-c', config, '--format', 'tap', cases]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^TAP version 13\n1\.\.2\nok 1 - .*: right\nnot ok 2 - .*: wrong <one>\n {2}---\n {2}diffs:\n {4}- "decision: expected/);
  });

  test('JUnit output', async () => {
    const r = await portcullis(['test', '-c', config, '--format', 'junit', cases]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /<testsuite name="portcullis policy tests" tests="2" failures="1">/);
    assert.match(r.stdout, /<testcase classname="[^"]+" name="wrong &#60;one&#62;">\n {4}<failure message="decision: expected &#34;forward&#34;, got &#34;refuse&#34;">/);
  });

  test('usage errors exit 2', async () => {
    const malformed = join(work, 'malformed.cases.yaml');
    writeFileSync(malformed, stringify({ cases: [{ name: 'x', request: { url: 'https://api.example.com/' }, expect: { stauts: 200 } }] }));
    for (const args of [['test', '-c', config], ['test', '-c', config, '--format', 'xml', cases], ['test', '-c', config, malformed], ['test', '-c', config, join(work, 'missing.yaml')]]) {
      const r = await portcullis(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Usage: portcullis test/);
    }
    const r = await portcullis(['test', '-c', config, malformed]);
    assert.match(r.stderr, /cases\[0\]\.expect: unknown stauts/);
  });

  test('--help', async () => {
    const r = await portcullis(['test', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: portcullis test/);
  });
});

describe('portcullis explain', () => {
  let config: string;
  before(() => {
    config = exampleGateway('require-jwt-for-api');
  });

  test('a denied request: each step, each field, and the change that would allow it', async () => {
    const r = await portcullis(['explain', '-c', config, '-X', 'POST', '--url', 'https://api.example.com/api/orders/1', '--claims', '{"iss":"https://auth.example.com","sub":"alice","scope":"orders:read"}']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^virtual-host +ok +listener 'edge' \(port 8443\), SNI 'api.example.com' → virtual host 'api', host 'api.example.com'\n/);
    assert.match(r.stdout, /\nauthentication +ok +no client certificate; claims given, not verified: principal https:\/\/auth.example.com\/alice\n/);
    assert.match(r.stdout, /\n {4}DENY api-writes-need-scope: matched missing-scope\n/);
    assert.match(r.stdout, /✓ when\[0\]\.notValues request\.auth\.claims\[scope\] \["orders:write"\]: request has \["orders:read"\]|✓ when\[0\]\.notValues request\.auth\.claims\[scope\] \["orders:write"\]: request has "orders:read"/);
    assert.match(r.stdout, /\ndecision: refuse 403 GW_AUTHZ_DENIED/);
    assert.match(r.stdout, /\nto allow it: DENY policy 'api-writes-need-scope' rule 'missing-scope' matches .*when\[0\]\.notValues \(request\.auth\.claims\[scope\]\) given one of \["orders:write"\]/);
  });

  test('--json, and a request from a YAML file', async () => {
    const file = join(work, 'request.yaml');
    writeFileSync(file, stringify({ method: 'GET', url: 'https://api.example.com/api/x', claims: { iss: 'https://auth.example.com', sub: 'bob' } }));
    const r = await portcullis(['explain', '-c', config, '--json', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.outcome.decision, 'forward');
    assert.equal(out.authorization.decision.rule, 'authenticated-api');
    assert.equal(out.forwarded.headers['x-user'], 'bob');
  });

  test('usage errors exit 2, --help exits 0', async () => {
    for (const args of [['explain', '-c', config], ['explain', '-c', config, '--url', 'https://api.example.com/', '--claims', 'nope'], ['explain', '-c', config, '--egress', '--host', 'x.com'], ['explain', '-c', config, '--url', 'https://api.example.com/', '-X', 'get']]) {
      const r = await portcullis(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /Usage: portcullis explain/);
    }
    const help = await portcullis(['explain', '--help']);
    assert.equal(help.code, 0);
  });
});

describe('portcullis lint', () => {
  test('exit codes follow --fail-on', async () => {
    const dir = mkdtempSync(join(work, 'lint-'));
    const config = exampleGateway('require-jwt-for-api');
    const clean = await portcullis(['lint', '-c', config, '--fail-on', 'warning']);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.equal(clean.stdout, '0 findings\n');
    // The embedded default: two `requestPrincipals: ['*']` warnings, no error.
    const state = ['--state-dir', join(dir, 'state')];
    const warned = await portcullis(['lint', ...state], { timeoutMs: 60_000 });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stdout, /^warning wildcard-principal policies\[api\]\.rules\[0\]: requestPrincipals: \['\*'\] admits any valid token of any provider\n {8}fix: /);
    const failed = await portcullis(['lint', ...state, '--fail-on', 'warning', '--json']);
    assert.equal(failed.code, 1);
    assert.deepEqual(JSON.parse(failed.stdout).map((f: { id: string }) => f.id), ['wildcard-principal', 'wildcard-principal']);
  });

  test('usage errors exit 2, --help exits 0', async () => {
    const r = await portcullis(['lint', '--fail-on', 'info']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Usage: portcullis lint/);
    assert.equal((await portcullis(['lint', '--help'])).code, 0);
  });
});
