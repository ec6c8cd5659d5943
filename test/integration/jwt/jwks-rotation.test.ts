// JWKS lifecycle against a real endpoint: key rotation, refetch cooldown, stale-while-error, limits.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JwtProviderConfig } from '../../../gateway/config/schema.js';
import { GatewayError } from '../../../gateway/core/errors.js';
import { LOG_EVENTS } from '../../../gateway/core/log.js';
import { createJwtAuthn, type JwtAuthn } from '../../../gateway/jwt/verifier.js';
import { frozenClock, makeKey, memoryLog, sign, startJwksServer, type TestKey } from './helpers.js';

const ISS = 'https://idp.example';
const T0 = 1_800_000_000_000;

async function reason(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err.reason;
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

describe('JWKS rotation and failure handling', () => {
  let k1: TestKey;
  let k2: TestKey;
  const cleanup: (() => unknown)[] = [];

  before(async () => {
    [k1, k2] = await Promise.all([makeKey('ES256', 'k1'), makeKey('RS256', 'k2')]);
  });
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function setup(over: Partial<JwtProviderConfig> = {}, keys = [k1.publicJwk]) {
    const server = await startJwksServer(keys);
    cleanup.push(() => server.close());
    const clock = frozenClock(T0);
    const log = memoryLog();
    const authn: JwtAuthn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: server.url, ...over }], { tokenCacheSize: 0 }, { logger: log.logger, now: clock.now });
    cleanup.push(() => authn.close());
    await authn.ready();
    const token = (key: TestKey, sub = 'alice') => sign(key, { iss: ISS, sub }, { now: T0 / 1000 });
    const check = async (t: string) => reason(authn.authenticate({ headers: { authorization: `Bearer ${t}` }, query: '' }));
    return { server, clock, log, authn, token, check };
  }

  test('an unknown kid refetches the JWKS and picks up the rotated key (istio/istio#41588)', async () => {
    const { server, clock, token, check } = await setup();
    assert.equal(server.hits, 1);
    server.keys = [k1.publicJwk, k2.publicJwk];
    clock.advance(30_000);
    assert.equal(await check(await token(k2)), 'accepted');
    assert.equal(server.hits, 2);
    assert.equal(await check(await token(k1)), 'accepted', 'the old key keeps working while it is published');
  });

  test('the cooldown bounds refetches, and concurrent misses share one fetch', async () => {
    const { server, clock, token, check } = await setup({ jwksCooldownSeconds: 30 });
    const unknown = await token(k2);
    assert.equal(await check(unknown), 'kid_unknown');
    assert.equal(server.hits, 1, 'inside the cooldown after the start-up fetch: no refetch');

    clock.advance(30_000);
    server.delayMs = 50;
    const results = await Promise.all(Array.from({ length: 10 }, () => check(unknown)));
    assert.deepEqual(new Set(results), new Set(['kid_unknown']));
    assert.equal(server.hits, 2, 'ten concurrent misses cost one fetch');
    for (let i = 0; i < 5; i++) assert.equal(await check(unknown), 'kid_unknown');
    assert.equal(server.hits, 2);

    clock.advance(29_999);
    await check(unknown);
    assert.equal(server.hits, 2);
    clock.advance(1);
    await check(unknown);
    assert.equal(server.hits, 3);
  });

  test('an endpoint that fails after the first fetch keeps serving the last good keys (stale)', async () => {
    const { server, clock, token, check, authn, log } = await setup({ jwksCacheSeconds: 600 });
    server.failWith = 503;
    clock.advance(600_000);
    assert.equal(await check(await token(k1)), 'accepted', 'an expired cache still serves while it refreshes');
    await until(() => authn.status().idp?.state === 'stale', 'the background refresh to fail');
    assert.equal(server.hits, 2);
    const status = authn.status().idp;
    assert.equal(status?.keys, 1);
    assert.equal(status?.lastError, 'HTTP 503');
    assert.equal(status?.lastFetchAt, T0);
    assert.equal(await check(await token(k1, 'bob')), 'accepted');
    const failed = log.lines.find((l) => l.event === LOG_EVENTS.JWKS_FETCH_FAILED);
    assert.equal(failed?.provider, 'idp');
    assert.equal(failed?.state, 'stale');

    server.failWith = undefined;
    clock.advance(30_000);
    await check(await token(k1));
    await until(() => authn.status().idp?.state === 'fresh', 'the refresh to succeed');
  });

  test('a background refresh drops a key the IdP stopped publishing', async () => {
    const { server, clock, token, check, authn } = await setup({ jwksCacheSeconds: 60, jwksCooldownSeconds: 30 }, [k1.publicJwk, k2.publicJwk]);
    server.keys = [k2.publicJwk];
    clock.advance(60_000);
    assert.equal(await check(await token(k1)), 'accepted');
    await until(() => server.hits === 2 && authn.status().idp?.keys === 1, 'the refresh');
    assert.equal(await check(await token(k1, 'bob')), 'kid_unknown');
    assert.equal(await check(await token(k2)), 'accepted');
  });

  test('a hung endpoint times out, and the provider stays empty', async () => {
    const server = await startJwksServer([k1.publicJwk]);
    cleanup.push(() => server.close());
    server.delayMs = 2_000;
    const log = memoryLog();
    const authn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: server.url, jwksTimeoutMs: 100 }], {}, { logger: log.logger });
    cleanup.push(() => authn.close());
    const started = Date.now();
    await authn.ready();
    assert.ok(Date.now() - started < 1_500);
    assert.deepEqual(authn.status().idp, { state: 'empty', keys: 0, lastError: 'timed out after 100 ms' });
  });

  test('an oversized or malformed JWKS is a failed fetch, never a key set', async () => {
    const huge = { ...k1.publicJwk, kid: 'big', x5c: ['A'.repeat(1_100_000)] };
    const { authn: big } = await setup({}, [huge]);
    assert.equal(big.status().idp?.state, 'empty');
    assert.match(big.status().idp?.lastError ?? '', /larger than 1048576 bytes/);

    const { authn: junk } = await setup({}, [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }]);
    assert.equal(junk.status().idp?.state, 'empty');
    assert.match(junk.status().idp?.lastError ?? '', /no usable keys/);
  });

  test('a streamed JWKS without Content-Length is cut off at 1 MiB', async () => {
    let sent = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (sent < 64 * 1_048_576 && res.write(chunk)) sent += chunk.length;
        if (sent < 64 * 1_048_576) res.once('drain', pump);
        else res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const authn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: url }], {}, { logger: memoryLog().logger });
    cleanup.push(() => authn.close());
    await authn.ready();
    assert.match(authn.status().idp?.lastError ?? '', /larger than 1048576 bytes/);
    assert.ok(sent < 64 * 1_048_576, 'the download was abandoned, not read to the end');
  });

  // A compression bomb (CVE-2026-48044 class): fetch decodes Content-Encoding by itself, so the limit must count
  // decoded bytes. 256 MiB of spaces is ~250 KiB of gzip and ~20 bytes of brotli; decoding it whole would hold all of it.
  for (const encoding of ['gzip', 'br'] as const) {
    test(`a ${encoding} bomb is cut off at 1 MiB of decoded JSON; memory stays flat`, async () => {
      const decoded = 256 * 1_048_576;
      const zero = Buffer.alloc(1_048_576, 0x20);
      const pieces: Buffer[] = [];
      const compressor = encoding === 'gzip' ? zlib.createGzip({ level: 9 }) : zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } });
      compressor.on('data', (c: Buffer) => pieces.push(c));
      const done = new Promise((resolve) => compressor.once('end', resolve));
      for (let i = 0; i < decoded / zero.length; i++) if (!compressor.write(zero)) await new Promise((r) => compressor.once('drain', r));
      compressor.end();
      await done;
      const bomb = Buffer.concat(pieces);
      const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': bomb.length }).end(bomb));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanup.push(() => new Promise((resolve) => server.close(resolve)));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const authn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: url }], {}, { logger: memoryLog().logger });
      cleanup.push(() => authn.close());
      const rss = process.memoryUsage().rss;
      await authn.ready();
      const grown = (process.memoryUsage().rss - rss) / 1_048_576;
      console.log(`# ${encoding} bomb: ${bomb.length} bytes for ${decoded / 1_048_576} MiB decoded; RSS grew ${grown.toFixed(0)} MiB`);
      assert.match(authn.status().idp?.lastError ?? '', /larger than 1048576 bytes/);
      assert.ok(grown < 64, `RSS grew ${grown.toFixed(0)} MiB while refusing it`);
    });
  }
});
