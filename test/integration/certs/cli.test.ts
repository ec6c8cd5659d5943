// `certs init / issue / inspect` round trip in a temp directory, checked with the openssl binary.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCertsCli } from '../../../certs/cli.js';

const root = mkdtempSync(join(tmpdir(), 'portcullis-certs-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCertsCli(argv, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) });
  return { code, out, err };
}

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' });

for (const keyType of ['ec', 'rsa']) {
  for (const intermediate of [false, true]) {
    test(`init → issue → inspect (${keyType}${intermediate ? ', with intermediate' : ''})`, async () => {
      const dir = join(root, `${keyType}-${intermediate}`, 'pki');
      const init = await cli('init', '--dir', dir, '--trust-domain', 'shop.test', '--key-type', keyType, ...(intermediate ? ['--intermediate'] : []));
      assert.equal(init.code, 0, init.err);
      assert.equal(mode(dir), '700');
      assert.equal(mode(join(dir, 'ca-key.pem')), '600');
      assert.equal(mode(join(dir, 'ca.pem')), '644');
      if (intermediate) assert.equal(mode(join(dir, 'intermediate-key.pem')), '600');

      const issue = await cli('issue', '--dir', dir, '--spiffe-id', 'spiffe://shop.test/ns/shop/sa/api', '--dns', 'api.shop.test', '--dns', 'localhost', '--ip', '127.0.0.1', '--ttl', '2h', '--key-type', keyType);
      assert.equal(issue.code, 0, issue.err);
      assert.match(issue.out, /^spiffe id: spiffe:\/\/shop.test\/ns\/shop\/sa\/api\nserial: [0-9A-F]+\nnot after: /);
      const cert = join(dir, 'ns-shop-sa-api.pem');
      const key = join(dir, 'ns-shop-sa-api-key.pem');
      assert.equal(mode(key), '600');
      assert.doesNotMatch(issue.out + init.out, /PRIVATE KEY/);

      const verify = openssl('verify', '-CAfile', join(dir, 'ca.pem'), ...(intermediate ? ['-untrusted', cert] : []), cert);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);

      const inspect = await cli('inspect', cert, '--bundle', join(dir, 'ca.pem'), '--key', key);
      assert.equal(inspect.code, 0, inspect.err);
      assert.match(inspect.out, /^spiffe id: spiffe:\/\/shop.test\/ns\/shop\/sa\/api$/m);
      assert.match(inspect.out, /^subject alt names: URI:"spiffe:\/\/shop.test\/ns\/shop\/sa\/api", DNS:"api.shop.test", DNS:"localhost", IP Address:"127.0.0.1"$/m);
      assert.match(inspect.out, /^time left: 1h 5\dm$/m);
      assert.match(inspect.out, new RegExp(`^key: ${keyType === 'ec' ? 'ec P-256' : 'rsa 2048'}$`, 'm'));
      assert.match(inspect.out, /^chain verifies: yes$/m);
      assert.match(inspect.out, /^key matches certificate: yes$/m);
      assert.match(inspect.out, new RegExp(`^certificates in file: ${intermediate ? 2 : 1}$`, 'm'));
      assert.doesNotMatch(inspect.out, /PRIVATE KEY/);
    });
  }
}

describe('refusals write nothing', () => {
  const dir = join(root, 'refusals');
  const listing = () => readdirSync(dir).sort();

  test('setup', async () => {
    assert.equal((await cli('init', '--dir', dir, '--trust-domain', 'shop.test')).code, 0);
  });

  const cases: [string, string[], RegExp, number][] = [
    ['not a SPIFFE ID', ['--spiffe-id', 'https://shop.test/a'], /must start with "spiffe:\/\/"/, 1],
    ['a dot segment', ['--spiffe-id', 'spiffe://shop.test/a/../admin'], /"\." or "\.\."/, 1],
    ['another trust domain', ['--spiffe-id', 'spiffe://other.test/a'], /not in the CA's trust domain \(shop.test\)/, 1],
    ['a bare trust domain', ['--spiffe-id', 'spiffe://shop.test'], /names a trust domain, not a workload/, 1],
    ['a TTL past the CA', ['--spiffe-id', 'spiffe://shop.test/a', '--ttl', '9999d'], /past the issuing CA's notAfter/, 1],
    ['an unparsable TTL', ['--spiffe-id', 'spiffe://shop.test/a', '--ttl', '1 day'], /--ttl must look like/, 2],
    ['a zero TTL', ['--spiffe-id', 'spiffe://shop.test/a', '--ttl', '0h'], /--ttl must look like/, 2],
    ['a bad key type', ['--spiffe-id', 'spiffe://shop.test/a', '--key-type', 'dsa'], /--key-type must be one of rsa, ec/, 2],
    ['a bad IP', ['--spiffe-id', 'spiffe://shop.test/a', '--ip', 'localhost'], /not an IP address/, 1],
    ['an unknown flag', ['--spiffe-id', 'spiffe://shop.test/a', '--bogus'], /Unknown option '--bogus'/, 2],
    ['a missing --spiffe-id', [], /--spiffe-id is required/, 2],
  ];
  for (const [name, args, message, code] of cases) {
    test(name, async () => {
      const before = listing();
      const r = await cli('issue', '--dir', dir, ...args);
      assert.equal(r.code, code, r.err);
      assert.match(r.err, message);
      assert.equal(r.out, '');
      assert.deepEqual(listing(), before);
    });
  }

  test('a CA key that does not match the CA certificate', async () => {
    const other = join(root, 'other');
    await cli('init', '--dir', other, '--trust-domain', 'shop.test');
    const swapped = join(root, 'swapped');
    await cli('init', '--dir', swapped, '--trust-domain', 'shop.test');
    writeFileSync(join(swapped, 'ca-key.pem'), readFileSync(join(other, 'ca-key.pem')));
    const before = readdirSync(swapped).sort();
    const r = await cli('issue', '--dir', swapped, '--spiffe-id', 'spiffe://shop.test/a');
    assert.equal(r.code, 1);
    assert.match(r.err, /ca-key.pem is not the private key of .*ca.pem/);
    assert.deepEqual(readdirSync(swapped).sort(), before);

    const inspect = await cli('inspect', join(swapped, 'ca.pem'), '--key', join(swapped, 'ca-key.pem'));
    assert.equal(inspect.code, 1);
    assert.match(inspect.out, /^key matches certificate: no$/m);
  });

  test('init refuses to overwrite an existing CA unless --force', async () => {
    const caBefore = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const r = await cli('init', '--dir', dir, '--trust-domain', 'shop.test');
    assert.equal(r.code, 1);
    assert.match(r.err, /refusing to overwrite .*ca.pem/);
    assert.equal(readFileSync(join(dir, 'ca.pem'), 'utf8'), caBefore);
    assert.equal((await cli('init', '--dir', dir, '--trust-domain', 'shop.test', '--force')).code, 0);
    assert.notEqual(readFileSync(join(dir, 'ca.pem'), 'utf8'), caBefore);
    assert.equal(mode(join(dir, 'ca-key.pem')), '600');
  });

  test('issue refuses to overwrite an existing certificate', async () => {
    assert.equal((await cli('issue', '--dir', dir, '--spiffe-id', 'spiffe://shop.test/dup')).code, 0);
    const r = await cli('issue', '--dir', dir, '--spiffe-id', 'spiffe://shop.test/dup');
    assert.equal(r.code, 1);
    assert.match(r.err, /refusing to overwrite/);
  });

  test('init rejects a bad trust domain', async () => {
    const r = await cli('init', '--dir', join(root, 'bad-td'), '--trust-domain', 'Shop.Test');
    assert.equal(r.code, 1);
    assert.match(r.err, /lowercase/);
    assert.throws(() => statSync(join(root, 'bad-td')), /ENOENT/);
  });
});

test('inspect: an expired certificate and a foreign bundle', async () => {
  const a = join(root, 'inspect-a');
  const b = join(root, 'inspect-b');
  await cli('init', '--dir', a, '--trust-domain', 'a.test');
  await cli('init', '--dir', b, '--trust-domain', 'b.test');
  await cli('issue', '--dir', a, '--spiffe-id', 'spiffe://a.test/w', '--ttl', '1s');
  await new Promise((r) => setTimeout(r, 1100));
  const r = await cli('inspect', join(a, 'w.pem'), '--bundle', join(b, 'ca.pem'));
  assert.equal(r.code, 1);
  assert.match(r.out, /^time left: expired /m);
  assert.match(r.out, /^chain verifies: no \(/m);
  const missing = await cli('inspect', join(a, 'nope.pem'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nope.pem: file not found/);
  const keyAsCert = await cli('inspect', join(a, 'w-key.pem'));
  assert.equal(keyAsCert.code, 1);
  assert.match(keyAsCert.err, /no PEM certificate found/);
  assert.doesNotMatch(keyAsCert.out + keyAsCert.err, /PRIVATE KEY/);
});

test('--help on every command, usage errors exit 2', async () => {
  for (const cmd of [[], ['--help'], ['init', '--help'], ['issue', '--help'], ['inspect', '--help']]) {
    const r = await cli(...cmd);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Usage: portcullis certs/);
  }
  const r = await cli('frobnicate');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frobnicate"/);
});

describe('an offline root: issue with the intermediate alone, rotate the intermediate with the root', () => {
  const dir = join(root, 'offline-root', 'pki');
  const offline = join(root, 'offline-root', 'vault');
  const verify = (cert: string) => openssl('verify', '-CAfile', join(dir, 'ca.pem'), '-untrusted', cert, cert);
  const serial = (cert: string) => openssl('x509', '-noout', '-serial', '-in', cert).stdout;

  test('issue never reads the root key once an intermediate exists', async () => {
    assert.equal((await cli('init', '--dir', dir, '--trust-domain', 'shop.test', '--key-type', 'ec', '--intermediate')).code, 0);
    mkdirSync(offline, { recursive: true });
    renameSync(join(dir, 'ca-key.pem'), join(offline, 'ca-key.pem'));
    const issued = await cli('issue', '--dir', dir, '--spiffe-id', 'spiffe://shop.test/ns/shop/sa/before', '--key-type', 'ec');
    assert.equal(issued.code, 0, issued.err);
    assert.equal(verify(join(dir, 'ns-shop-sa-before.pem')).status, 0);
  });

  test('rotating the intermediate needs the root key, and says so without it', async () => {
    const refused = await cli('intermediate', '--dir', dir);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /ca-key\.pem/);
    const before = serial(join(dir, 'intermediate.pem'));
    renameSync(join(offline, 'ca-key.pem'), join(dir, 'ca-key.pem'));
    const rotated = await cli('intermediate', '--dir', dir, '--key-type', 'ec');
    assert.equal(rotated.code, 0, rotated.err);
    assert.match(rotated.out, /^trust domain: shop\.test\nwrote .*intermediate\.pem\nwrote .*intermediate-key\.pem\n$/);
    assert.equal(mode(join(dir, 'intermediate-key.pem')), '600');
    assert.notEqual(serial(join(dir, 'intermediate.pem')), before);
  });

  test('leaves of the new intermediate and of the old one both chain to the root', async () => {
    const issued = await cli('issue', '--dir', dir, '--spiffe-id', 'spiffe://shop.test/ns/shop/sa/after', '--key-type', 'ec');
    assert.equal(issued.code, 0, issued.err);
    assert.equal(verify(join(dir, 'ns-shop-sa-after.pem')).status, 0);
    assert.equal(verify(join(dir, 'ns-shop-sa-before.pem')).status, 0, 'the old leaf carries the old intermediate');
  });
});
