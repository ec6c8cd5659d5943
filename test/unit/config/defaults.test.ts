import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '../../../gateway/config/defaults.js';

test('defaults are frozen all the way down', () => {
  assert.ok(Object.isFrozen(DEFAULTS));
  assert.ok(Object.isFrozen(DEFAULTS.jwtAlgorithms));
  assert.ok(Object.isFrozen(DEFAULTS.egress));
  assert.ok(DEFAULTS.jwtFromHeaders.every((h) => Object.isFrozen(h)) && Object.isFrozen(DEFAULTS.jwtFromHeaders));
  assert.throws(() => {
    (DEFAULTS as { maxHeaders: number }).maxHeaders = 1_000;
  }, TypeError);
});

test('the secure defaults', () => {
  assert.deepEqual(
    { ...DEFAULTS, jwtAlgorithms: undefined, jwtFromHeaders: undefined },
    {
      listenerAddress: '0.0.0.0',
      tlsMinVersion: 'TLSv1.2',
      clientAuth: 'none',
      handshakeTimeoutMs: 10_000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      maxHeaderBytes: 16 * 1024,
      maxHeaders: 100,
      routeMaxBodyBytes: 1024 * 1024,
      jwtAlgorithms: undefined,
      jwtFromHeaders: undefined,
      jwtClockSkewSeconds: 60,
      jwksCacheSeconds: 600,
      jwksCooldownSeconds: 30,
      jwksTimeoutMs: 5_000,
      upstreamProtocol: 'http1',
      upstreamMutualTls: true,
      upstreamConnections: 64,
      upstreamConnectTimeoutMs: 5_000,
      upstreamTimeoutMs: 30_000,
      watchIntervalMs: 1_000,
      stateDir: '.portcullis',
      logLevel: 'info',
      egress: {
        listenerAddress: '127.0.0.1',
        clientAuth: 'required',
        connectTimeoutMs: 10_000,
        dnsTimeoutMs: 5_000,
        idleTimeoutMs: 300_000,
        firstBytesTimeoutMs: 10_000,
        maxTunnelsPerIdentity: 256,
        maxTunnelsPerSource: 64,
        shutdownGraceMs: 10_000,
        originatePort: 443,
      },
    },
  );
  // Key confusion (CVE-2015-9235): no HMAC and no `none` among the accepted algorithms by default.
  assert.ok(DEFAULTS.jwtAlgorithms.every((a) => !a.startsWith('HS') && (a as string) !== 'none'));
});
