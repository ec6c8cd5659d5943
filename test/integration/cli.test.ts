// The command line as a user meets it: the real CLI process, its exit codes and what it prints.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portcullis } from '../helpers/cli.js';
import { configFixtures } from '../helpers/config-material.js';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const STACK_FRAME = /^\s+at /m;

describe('command line usage', () => {
  test('--version prints the package version', async () => {
    assert.deepEqual(await portcullis(['--version']), { code: 0, stdout: `${packageVersion}\n`, stderr: '' });
  });

  const usageErrors: [string, string[], RegExp, RegExp][] = [
    ['an unknown flag', ['run', '--bogus'], /Unknown option '--bogus'/, /Usage: portcullis run/],
    ['a flag without its value', ['validate', '-c'], /Option '-c, --config <value>' argument missing/, /Usage: portcullis validate/],
    ['an unknown command', ['serve'], /unknown command: serve/, /Usage: portcullis <command>/],
    ['validate without a file', ['validate'], /validate needs a CONFIG file/, /Usage: portcullis validate/],
    ['a bad --workers value', ['run', '--workers', 'many'], /--workers takes/, /Usage: portcullis run/],
  ];
  for (const [what, args, message, usage] of usageErrors) {
    test(`${what}: usage on stderr, exit 2, no stack trace`, async () => {
      const { code, stdout, stderr } = await portcullis(args);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, message);
      assert.match(stderr, usage);
      assert.doesNotMatch(stderr, STACK_FRAME);
    });
  }

  test('validate FILE and validate -c FILE are the same command', async () => {
    const file = join(configFixtures(), 'good.yaml');
    const positional = await portcullis(['validate', file]);
    assert.deepEqual(positional, await portcullis(['validate', '-c', file]));
    assert.equal(positional.code, 0);
    assert.match(positional.stdout, /^ok: /);
  });
});

describe('fatal means fatal: a socket that cannot be bound stops the gateway', () => {
  let dir: string;
  let occupied: Server;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
    writeFileSync(join(dir, 'policies.yaml'), 'version: v1\npolicies: []\n');
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    port = (occupied.address() as { port: number }).port;
  });
  after(() => {
    occupied.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (listenerPort: number, adminPort: number) => `version: v1
listeners:
  - name: edge
    address: 127.0.0.1
    port: ${listenerPort}
    hosts:
      - { name: www, hostnames: [www.example.com], tls: { mode: passthrough, upstream: db } }
upstreams:
  - { name: db, url: 'tcp://127.0.0.1:5432' }
routes: []
admin: { address: 127.0.0.1, port: ${adminPort} }
`;

  for (const [what, listenerPort, adminPort, workers] of [
    ['the edge listener', 'port', 0, '1'],
    ['the admin plane', 0, 'port', '1'],
    ['the edge listener of two workers', 'port', 0, '2'],
    ['the admin plane of two workers', 0, 'port', '2'],
  ] as const) {
    test(`${what} on a port in use: one line naming the config, exit 1`, async () => {
      const file = join(dir, `${what.replace(/ /g, '-')}.yaml`);
      writeFileSync(file, config(listenerPort === 'port' ? port : 0, adminPort === 'port' ? port : 0));
      assert.equal((await portcullis(['validate', file])).code, 0, 'the config itself is valid');
      const { code, stderr } = await portcullis(['run', '-c', file, '--workers', workers], { timeoutMs: 30_000 });
      assert.equal(code, 1);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0]!, new RegExp(`^portcullis: cannot start .* with ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*EADDRINUSE.*:${port}`));
    });
  }
});
