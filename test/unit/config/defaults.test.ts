import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '../../../gateway/config/defaults.js';

test('defaults are frozen all the way down', () => {
  assert.ok(Object.isFrozen(DEFAULTS));
  assert.ok(Object.isFrozen(DEFAULTS.jwtAlgorithms));
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
      tls12Ciphers: [
        'ECDHE-ECDSA-AES128-GCM-SHA256',
        'ECDHE-RSA-AES128-GCM-SHA256',
        'ECDHE-ECDSA-AES256-GCM-SHA384',
        'ECDHE-RSA-AES256-GCM-SHA384',
        'ECDHE-ECDSA-CHACHA20-POLY1305',
        'ECDHE-RSA-CHACHA20-POLY1305',
      ],
      tlsCurves: ['X25519', 'P-256', 'P-384'],
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
      jwtRequireExpiration: true,
      routeAuthentication: 'optional',
      upstreamProtocol: 'http1',
      upstreamMutualTls: true,
      upstreamConnections: 64,
      upstreamConnectTimeoutMs: 5_000,
      upstreamTimeoutMs: 30_000,
      watchIntervalMs: 1_000,
      stateDir: '.portcullis',
      logLevel: 'info',
    },
  );
  // Key confusion (CVE-2015-9235): no HMAC and no `none` among the accepted algorithms by default.
  assert.ok(DEFAULTS.jwtAlgorithms.every((a) => !a.startsWith('HS') && (a as string) !== 'none'));
});
