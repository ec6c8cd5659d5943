// Bounded shutdown, as an operator sees it: the real CLI on a config file, a gRPC-style stream that never
// ends and an HTTP/1.1 request whose upstream answers in 10 s, then SIGTERM. The process must exit within
// the configured drain plus a second, with code 0, having cut what the drain left.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { startLifecycleUpstream, type LifecycleUpstream } from '../../helpers/lifecycle-upstream.js';
import { freePorts, until } from '../../helpers/net.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const DRAIN_MS = 1_500;

describe('SIGTERM with requests that never end', () => {
  let material: TestIngress;
  let slow: LifecycleUpstream;
  let grpc: LifecycleUpstream;

  before(async () => {
    [slow, grpc] = await Promise.all([startLifecycleUpstream(), startLifecycleUpstream('h2')]);
    // The test ingress writes the PKI and a config file; its in-process gateway is not needed here.
    material = await startTestIngress((config) => {
      config.upstreams.push({ name: 'slow', url: slow.url }, { name: 'grpc', url: grpc.url, protocol: 'h2' });
      config.routes.push(
        { name: 'slow', match: { path: { prefix: '/slow' } }, upstream: 'slow' },
        { name: 'grpc', match: { path: { prefix: '/grpc' } }, upstream: 'grpc', timeoutMs: 600_000 },
      );
      config.policies.push({ name: 'open', action: 'ALLOW', routes: ['slow', 'grpc'], rules: [{}] });
      config.shutdown = { drainMs: DRAIN_MS };
    });
    await material.gateway.close(0);
  });
  after(async () => {
    await material.close();
    await Promise.all([slow.close(), grpc.close()]);
  });

  it(`exits 0 within drainMs + 1 s, cutting a stuck gRPC stream and a slow answer`, async () => {
    // Both from one call: taken one at a time, the two could be the same port.
    const { edge: port, admin: adminPort } = await freePorts(['edge', 'admin']);
    const config = parse(fs.readFileSync(material.configFile, 'utf8'));
    config.listeners[0].port = port;
    // Its own admin port: the default (9901) may be held by another gateway on the machine, and a child that
    // could not start its admin plane must fail this test, not leave it waiting.
    config.admin = { address: '127.0.0.1', port: adminPort };
    fs.writeFileSync(material.configFile, stringify(config));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli.ts'), 'run', '-c', material.configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (let i = 0; !out.includes('"LISTENING"'); i++) {
      if (i > 300) throw new Error(`gateway did not start:\n${out}`);
      await sleep(50);
    }

    const client = http2.connect(`https://localhost:${port}`, { ca: material.caPem, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    client.on('error', () => {});
    const stream = client.request({ ':path': '/grpc/hang', ':method': 'POST', 'content-type': 'application/grpc' });
    stream.on('error', () => {});
    stream.write(Buffer.from([0, 0, 0, 0, 0]));
    const slowAnswer = request(port, material.caPem, { path: '/slow/slow?ms=10000' }).catch((err: Error) => err);
    await until('both upstream requests open', () => (grpc.open >= 1 && slow.open >= 1) || undefined, 15_000).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n${out}`);
    });

    const signalled = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const tookMs = performance.now() - signalled;
    console.log(`# SIGTERM with a stuck gRPC stream: exited ${code} after ${Math.round(tookMs)} ms (drainMs ${DRAIN_MS})`);
    assert.equal(code, 0, out);
    assert.ok(tookMs < DRAIN_MS + 1_000, `took ${Math.round(tookMs)} ms`);
    assert.ok((await slowAnswer) instanceof Error, 'the unfinished answer was cut');
    client.destroy();
    // Both upstream requests were cancelled, not left running.
    for (let i = 0; (grpc.open > 0 || slow.open > 0) && i < 50; i++) await sleep(20);
    assert.equal(grpc.open + slow.open, 0);
  });
});
