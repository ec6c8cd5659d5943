import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULTS, type Defaults } from '../../../gateway/config/defaults.js';
import { TLS12_CIPHERS } from '../../../gateway/config/schema.js';

test('defaults are frozen all the way down', () => {
  assert.ok(Object.isFrozen(DEFAULTS));
  assert.ok(Object.isFrozen(DEFAULTS.jwtAlgorithms));
  assert.ok(Object.isFrozen(DEFAULTS.egressLimits) && Object.isFrozen(DEFAULTS.egressPorts));
  assert.ok(DEFAULTS.jwtFromHeaders.every((h) => Object.isFrozen(h)) && Object.isFrozen(DEFAULTS.jwtFromHeaders));
  assert.throws(() => {
    (DEFAULTS as { maxHeaders: number }).maxHeaders = 1_000;
  }, TypeError);
});

test('the default TLS 1.2 suites are every suite the schema allows, each forward-secret (ECDHE) and AEAD', () => {
  assert.deepEqual(DEFAULTS.tls12Ciphers, TLS12_CIPHERS);
  assert.ok(DEFAULTS.tls12Ciphers.length === 6 && DEFAULTS.tls12Ciphers.every((c) => /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/.test(c)));
});

test('no HMAC and no `none` among the accepted JWT algorithms by default (key confusion, CVE-2015-9235)', () => {
  assert.ok(DEFAULTS.jwtAlgorithms.every((a) => !a.startsWith('HS') && (a as string) !== 'none'));
});

/** The Setting column of docs/configuration.md's Defaults table for each default (every key must have one). */
const DOC_ROWS: Record<Exclude<keyof Defaults, 'egressLimits'>, string> & Record<`egressLimits.${keyof Defaults['egressLimits']}`, string> = {
  listenerAddress: 'listener `address`',
  tlsMinVersion: 'TLS `minVersion`',
  clientAuth: '`clientAuth`',
  tls12Ciphers: 'listener `tls.ciphers`',
  tlsCurves: 'listener `tls.curves`',
  handshakeTimeoutMs: '`timeouts.handshakeMs`',
  headersTimeoutMs: '`timeouts.headersMs`',
  requestTimeoutMs: '`timeouts.requestMs`',
  bodyIdleTimeoutMs: '`timeouts.bodyIdleMs`',
  writeIdleTimeoutMs: '`timeouts.writeIdleMs`',
  idleTimeoutMs: '`timeouts.idleMs`',
  maxConcurrentStreams: '`limits.maxConcurrentStreams`',
  maxStreamResetsPerSecond: '`limits.maxStreamResetsPerSecond`',
  upstreamMaxPendingRequests: 'upstream `maxPendingRequests`',
  drainMs: '`shutdown.drainMs`',
  maxHeaderBytes: '`limits.maxHeaderBytes`',
  maxHeaders: '`limits.maxHeaders`',
  routeMaxBodyBytes: 'route `maxBodyBytes`',
  jwtAlgorithms: 'JWT `algorithms`',
  jwtFromHeaders: 'JWT token location',
  jwtClockSkewSeconds: 'JWT `clockSkewSeconds`',
  jwksCacheSeconds: '`jwksCacheSeconds`',
  jwksCooldownSeconds: '`jwksCooldownSeconds`',
  jwksTimeoutMs: '`jwksTimeoutMs`',
  jwtRequireExpiration: 'JWT `requireExpiration`',
  routeAuthentication: 'route `authentication`',
  jwtTokenCacheSize: '`jwtCache.maxEntries`',
  upstreamProtocol: 'upstream `protocol`',
  upstreamMutualTls: 'upstream `tls.mutual`',
  upstreamConnections: 'upstream `connections`',
  upstreamConnectTimeoutMs: 'upstream `connectTimeoutMs`',
  upstreamTimeoutMs: 'upstream `timeoutMs`',
  loadBalancerPolicy: 'upstream `loadBalancer.policy`',
  panicThresholdPercent: 'upstream `loadBalancer.panicThresholdPercent`',
  dnsRefreshSeconds: 'upstream `dns.refreshSeconds`',
  healthCheckIntervalMs: 'upstream `healthCheck.intervalMs`',
  healthCheckTimeoutMs: 'upstream `healthCheck.timeoutMs`',
  healthyThreshold: 'upstream `healthCheck.healthyThreshold`',
  unhealthyThreshold: 'upstream `healthCheck.unhealthyThreshold`',
  outlierConsecutive5xx: 'upstream `outlierDetection.consecutive5xx`',
  outlierBaseEjectionMs: 'upstream `outlierDetection.baseEjectionMs`',
  outlierMaxEjectionPercent: 'upstream `outlierDetection.maxEjectionPercent`',
  retryOn: 'route `retries.on`',
  retryBackoffBaseMs: 'route `retries.backoff.baseMs`',
  retryBackoffMaxMs: 'route `retries.backoff.maxMs`',
  retryBudgetPercent: 'route `retries.budgetPercent`',
  websocketIdleTimeoutMs: 'route `websocket.idleTimeoutMs`',
  websocketMaxDurationMs: 'route `websocket.maxDurationMs`',
  backendWeight: 'route `backendRefs[].weight`',
  redirectStatusCode: 'route `RequestRedirect` `statusCode`',
  mirrorPercent: 'route `RequestMirror` `percent`',
  stateDir: '`stateDir`',
  logLevel: '`log.level`',
  watchIntervalMs: '`reload.watchIntervalMs`',
  adminAddress: '`admin.address`',
  adminPort: '`admin.port`',
  redisKeyPrefix: '`redis.keyPrefix`',
  redisConnectTimeoutMs: '`redis.connectTimeoutMs`',
  redisCommandTimeoutMs: '`redis.commandTimeoutMs`',
  rateLimitKey: 'rate limit `key`',
  rateLimitFailureMode: 'rate limit `failureMode`',
  tracingSamplingRatio: '`tracing.samplingRatio`',
  tracingServiceName: '`tracing.serviceName`',
  egressListenerAddress: '`egress.listener.address`',
  egressMaxHeaderBytes: '`egress.listener.maxHeaderBytes`',
  egressHeadersTimeoutMs: '`egress.listener.headersTimeoutMs`',
  egressClientAuth: '`egress.listener.tls.clientAuth`',
  egressPorts: 'egress rule `ports`',
  egressOriginatePort: '`egress.originate[].port`',
  auditMaxFileBytes: '`audit.maxFileBytes`',
  auditOnWriteFailure: '`audit.onWriteFailure`',
  auditCheckpointEveryRecords: '`audit.checkpoints.everyRecords`',
  auditCheckpointEverySeconds: '`audit.checkpoints.everySeconds`',
  'egressLimits.connectTimeoutMs': '`egress.limits.connectTimeoutMs`',
  'egressLimits.dnsTimeoutMs': '`egress.limits.dnsTimeoutMs`',
  'egressLimits.idleTimeoutMs': '`egress.limits.idleTimeoutMs`',
  'egressLimits.firstBytesTimeoutMs': '`egress.limits.firstBytesTimeoutMs`',
  'egressLimits.maxTunnelsPerIdentity': '`egress.limits.maxTunnelsPerIdentity`',
  'egressLimits.maxTunnelsPerSource': '`egress.limits.maxTunnelsPerSource`',
  'egressLimits.shutdownGraceMs': '`egress.limits.shutdownGraceMs`',
};

/** How the docs write a default: durations in ms/s/min, sizes in KiB/MiB, names in backticks. */
function docValue(key: string, value: unknown): string {
  if (key === 'jwtAlgorithms') return 'RS/PS/ES 256–512, EdDSA';
  if (key === 'jwtFromHeaders') {
    const [header] = value as Defaults['jwtFromHeaders'];
    return `\`${header?.name.replace(/^a/, 'A')}: ${header?.prefix?.trim()}\``;
  }
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'string' || typeof value === 'boolean') return `\`${String(value)}\``;
  const n = value as number;
  if (key.endsWith('Ms')) return n < 1000 ? `${n} ms` : n >= 120_000 && n % 60_000 === 0 ? `${n / 60_000} min` : `${n / 1000} s`;
  if (key.endsWith('Bytes')) return n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`;
  return String(n);
}

test("docs/configuration.md's Defaults table is DEFAULTS", () => {
  const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('## Defaults'), doc.indexOf('\n## ', doc.indexOf('## Defaults') + 1));
  const rows = new Map(
    [...table.matchAll(/^\| (.+?) \| (.+?) \| .+ \|$/gm)].filter((m) => m[1] !== 'Setting' && !m[1]!.startsWith('---')).map((m) => [m[1]!, m[2]!]),
  );
  const { egressLimits, ...flat } = DEFAULTS;
  const values: [string, unknown][] = [...Object.entries(flat), ...Object.entries(egressLimits).map(([k, v]): [string, unknown] => [`egressLimits.${k}`, v])];
  for (const [key, value] of values) {
    const setting = DOC_ROWS[key as keyof typeof DOC_ROWS];
    assert.ok(setting, `DOC_ROWS names no docs row for ${key}`);
    assert.equal(rows.get(setting), docValue(key, value), `${setting} (${key})`);
    rows.delete(setting);
  }
  assert.deepEqual([...rows.keys()], [], 'docs rows with no default behind them');
});
