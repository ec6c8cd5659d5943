// HTTP/2 attacks past Rapid Reset, on raw frames. "MadeYouReset" (CVE-2025-8671, 2025: Tomcat, Jetty, Netty and
// others): right after each request the client sends a frame that is an error on that stream, so the *server* resets
// it while the request's work goes on; defences that count only the client's RST_STREAM frames miss it. The
// CONTINUATION flood (CVE-2024-27316 class, 2024: Apache httpd, Envoy, nghttp2 and Node among others): a header block
// that never ends, buffered until memory runs out. Node's nghttp2 ends the whole connection on each of these frames
// (GOAWAY, or a reset and a close for a flow-control overflow), so none can multiplex the attack; these tests hold
// the gateway to that on every Node it runs on, and check that what did reach the upstream is cancelled with it.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { FLAG, FRAME, frame, hpackLiteral, openRawH2, zeroWindowUpdate } from '../../helpers/h2-frames.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { startLifecycleUpstream, type LifecycleUpstream } from '../../helpers/lifecycle-upstream.js';

const STREAMS = 100;
const SLOW_MS = 5_000;
/** The upstream's answer timeout here: what bounds a request whose client is gone when Node does not say so. */
const UPSTREAM_TIMEOUT_MS = 1_000;

const request = (streamId: number) =>
  frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, streamId, hpackLiteral([[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', `/life/slow?ms=${SLOW_MS}`]]));

/**
 * The frames sent after each request: each is an error on a stream the client has already half-closed (RFC 9113).
 * A PRIORITY frame naming its own stream is left out: Node 24's nghttp2 ignores PRIORITY frames (RFC 9113 deprecates
 * that signalling), so those streams stay ordinary requests.
 */
const STREAM_ERRORS: Record<string, (streamId: number) => Buffer> = {
  'WINDOW_UPDATE of 0 (§6.9)': zeroWindowUpdate,
  'WINDOW_UPDATE past 2^31 − 1 (§6.9.1)': (id) => frame(FRAME.WINDOW_UPDATE, 0, id, Buffer.from([0x7f, 0xff, 0xff, 0xff])),
  'DATA after END_STREAM (§5.1)': (id) => frame(FRAME.DATA, 0, id, Buffer.from('x')),
  'HEADERS after END_STREAM (§5.1)': (id) => frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, id, hpackLiteral([['x-late', '1']])),
};

describe('HTTP/2 frames that make the gateway reset streams, and header blocks that never end', () => {
  let gw: TestIngress;
  let upstream: LifecycleUpstream;

  before(async () => {
    upstream = await startLifecycleUpstream();
    gw = await startTestIngress((config) => {
      config.upstreams.push({ name: 'life', url: upstream.url, timeoutMs: UPSTREAM_TIMEOUT_MS });
      config.routes.push({ name: 'life', match: { path: { prefix: '/life' } }, upstream: 'life' });
      config.policies.push({ name: 'lifecycle', action: 'ALLOW', routes: ['life'], rules: [{}] });
    }, { logLevel: 'warn' });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  const serves = () =>
    new Promise<number>((resolve) => {
      https
        .get({ host: '127.0.0.1', port: gw.port, path: '/life/fast', ca: gw.caPem, servername: 'localhost', headers: { host: 'localhost' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', () => resolve(0));
    });

  for (const [name, streamError] of Object.entries(STREAM_ERRORS)) {
    it(`MadeYouReset with ${name}: the connection ends; what reached the upstream is cancelled`, async () => {
      const before = upstream.requests.length;
      const conn = await openRawH2(gw.port, gw.caPem);
      for (let i = 0, id = 1; i < STREAMS; i += 10) {
        const burst: Buffer[] = [];
        for (let j = 0; j < 10; j++, id += 2) burst.push(request(id), streamError(id));
        if (!conn.send(...burst)) break;
        await yieldToIo();
      }
      const ended = await Promise.race([conn.ended.then(() => true), sleep(2_000).then(() => false)]);
      conn.destroy();
      const reached = upstream.requests.length - before;
      console.log(`# ${name}: GOAWAY ${conn.goawayCode ?? 'none'}, resets ${JSON.stringify([...conn.resets])}, ${reached} of ${STREAMS} reached the upstream`);
      assert.ok(ended, 'the gateway ended the connection');
      assert.ok(reached <= 3, `${reached} requests of the attacking connection reached the upstream`);
      // Well before the upstream would have answered. Node 24 reports the client gone and the request is cancelled at
      // once; Node 20 stops reading a connection whose GOAWAY nghttp2 sent for a connection error and reports nothing,
      // not even the client's close, so there the upstream's timeout (`timeoutMs`) is what ends it.
      const started = performance.now();
      while (upstream.open > 0 && performance.now() - started < UPSTREAM_TIMEOUT_MS + 1_000) await sleep(25);
      assert.equal(upstream.open, 0, 'nothing of the attack is left running upstream');
      assert.equal(await serves(), 200);
    });
  }

  it('a CONTINUATION flood: the gateway ends the connection after a few frames, not at the end of its memory', async () => {
    const conn = await openRawH2(gw.port, gw.caPem);
    // HEADERS without END_HEADERS, then CONTINUATION frames that never set it: one header block without end.
    conn.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, hpackLiteral([[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/life/fast']])));
    const filler = frame(FRAME.CONTINUATION, 0, 1, hpackLiteral([['x-filler', 'a'.repeat(100)]]));
    let sent = 0;
    while (sent < 100_000 && conn.send(...Array<Buffer>(100).fill(filler))) {
      sent += 100;
      await yieldToIo();
    }
    await Promise.race([conn.ended, sleep(2_000)]);
    conn.destroy();
    console.log(`# CONTINUATION flood: connection ended after ${sent} frames sent, GOAWAY ${conn.goawayCode ?? 'none'}`);
    assert.ok(sent < 10_000, `${sent} CONTINUATION frames were accepted`);
    assert.notEqual(conn.goawayCode, undefined, 'the gateway said GOAWAY');
    assert.equal(await serves(), 200);
  });
});
