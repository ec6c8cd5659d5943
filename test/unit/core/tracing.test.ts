import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../../gateway/core/log.js';
import { createTracing, NO_TRACE, TRACING_OFF, tracingSettings } from '../../../gateway/core/tracing.js';

test('precedence: the config file, then the OTEL_* variables, then the defaults', () => {
  const env = { OTEL_SERVICE_NAME: 'from-env', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.2' };
  assert.deepEqual(tracingSettings({ enabled: true, endpoint: 'http://c:4318/v1/traces', samplingRatio: 0.5, serviceName: 'from-file' }, env), {
    endpoint: 'http://c:4318/v1/traces',
    samplingRatio: 0.5,
    serviceName: 'from-file',
  });
  // Unset in the file: the SDK reads the sampler and the exporter the endpoint from the environment.
  assert.deepEqual(tracingSettings({ enabled: true }, env), { endpoint: undefined, samplingRatio: undefined, serviceName: 'from-env' });
  assert.deepEqual(tracingSettings({ enabled: true }, {}), { endpoint: undefined, samplingRatio: 1, serviceName: 'portcullis' });
});

test('off: the shared no-op trace, whatever the request', async () => {
  const logger = createLogger('silent');
  for (const tracing of await Promise.all([createTracing(undefined, logger), createTracing({ enabled: false, endpoint: 'http://127.0.0.1:1/v1/traces' }, logger)])) {
    assert.equal(tracing, TRACING_OFF);
    assert.equal(tracing.start({} as never), NO_TRACE);
  }
  assert.ok(Object.isFrozen(NO_TRACE));
});
