// The real `portcullis run` process and its V8 heap flags: where Node has process.execve (≥ 22.15), the process
// replaces itself, same pid, with the flags in front of its own command line; an operator's NODE_OPTIONS choice is
// kept; on Node 20 it runs as started. /proc/PID/cmdline shows what the process runs as.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HEAP_FLAGS } from '../../../gateway/heap-flags.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const HAS_EXECVE = typeof (process as { execve?: unknown }).execve === 'function';

/** Starts `run`, waits for its listeners, returns the arguments and environment its pid runs with, stops it. */
async function runningProcess(configFile: string, env: NodeJS.ProcessEnv): Promise<{ argv: string[]; environ: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli.ts'), 'run', '-c', configFile], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; !out.includes('"LISTENING"'); i++) {
      if (i > 600 || child.exitCode !== null) throw new Error(`gateway did not start:\n${out}`);
      await sleep(50);
    }
    const read = (file: string) => fs.readFileSync(`/proc/${child.pid}/${file}`, 'utf8').split('\0').filter(Boolean);
    return { argv: read('cmdline'), environ: read('environ') };
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
  }
}

describe('portcullis run and its V8 heap flags', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  let dir: string;
  let configFile: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-heap-flags-'));
    configFile = path.join(dir, 'portcullis.yaml');
    fs.writeFileSync(
      configFile,
      `version: v1
listeners:
  - name: edge
    address: 127.0.0.1
    port: 0
    hosts:
      - { name: www, hostnames: [www.example.com], tls: { mode: passthrough, upstream: db } }
upstreams:
  - { name: db, url: 'tcp://127.0.0.1:5432' }
routes: []
admin: { address: 127.0.0.1, port: 0 }
`,
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(HAS_EXECVE ? `runs with ${HEAP_FLAGS.join(' ')}, under the pid it was started as` : 'runs as started (no process.execve on this Node)', async () => {
    const { NODE_OPTIONS: _, ...env } = process.env;
    delete env.MALLOC_ARENA_MAX;
    const { argv, environ } = await runningProcess(configFile, env);
    assert.deepEqual(argv.slice(1, 3), HAS_EXECVE ? [...HEAP_FLAGS] : ['--import', 'tsx'], argv.join(' '));
    assert.deepEqual(argv.slice(-3), ['run', '-c', configFile]);
    assert.equal(environ.includes('MALLOC_ARENA_MAX=1'), HAS_EXECVE, 'one malloc arena where it re-executes');
  });

  it('keeps a semi-space size set in NODE_OPTIONS', async () => {
    const { argv } = await runningProcess(configFile, { ...process.env, NODE_OPTIONS: '--max-semi-space-size=16' });
    assert.equal(argv.includes(HEAP_FLAGS[0]), false, argv.join(' '));
  });
});
