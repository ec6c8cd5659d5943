import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '../../../gateway/config/defaults.js';
import { TLS12_CIPHERS } from '../../../gateway/config/schema.js';

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
    { ...DEFAULTS, jwtAlgorithms: undefined, jwtFromHeaders: undefined, tls12Ciphers: undefined },
    {
      listenerAddress: '0.0.0.0',
      tlsMinVersion: 'TLSv1.2',
      clientAuth: 'none',
      tls12Ciphers: undefined,
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
  // Every TLS 1.2 suite the schema allows, and each one forward-secret (ECDHE) and AEAD (GCM or ChaCha20-Poly1305).
  assert.deepEqual(DEFAULTS.tls12Ciphers, TLS12_CIPHERS);
  assert.ok(DEFAULTS.tls12Ciphers.length === 6 && DEFAULTS.tls12Ciphers.every((c) => /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/.test(c)));
  // Key confusion (CVE-2015-9235): no HMAC and no `none` among the accepted algorithms by default.
  assert.ok(DEFAULTS.jwtAlgorithms.every((a) => !a.startsWith('HS') && (a as string) !== 'none'));
});
