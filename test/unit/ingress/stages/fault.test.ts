// Fault injection's compiled form: gRPC's mapping of the HTTP status when no grpcStatus is set, and the draws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFault, injectFault } from '../../../../gateway/ingress/stages/fault.js';
import { InjectedFault, toGrpcResponse, toHttpResponse } from '../../../../gateway/core/errors.js';
import type { Exchange } from '../../../../gateway/ingress/exchange.js';

test('without grpcStatus, gRPC clients get gRPC\'s mapping of httpStatus', () => {
  const grpcOf = (httpStatus: number) => compileFault({ abort: { percent: 100, httpStatus } }).grpcStatus;
  assert.deepEqual([400, 401, 403, 404, 429, 502, 503, 504, 500].map(grpcOf), [13, 16, 7, 12, 14, 14, 14, 14, 2]);
  assert.equal(compileFault({ abort: { percent: 100, httpStatus: 503, grpcStatus: 'RESOURCE_EXHAUSTED' } }).grpcStatus, 8);
  assert.equal(compileFault({ abort: { percent: 100, httpStatus: 503, grpcStatus: 'UNAUTHENTICATED' } }).grpcStatus, 16);
});

test('an abort answers the configured statuses under GW_FAULT_INJECTED', () => {
  const fault = new InjectedFault(418, 9);
  assert.equal(toHttpResponse(fault, 'id').status, 418);
  assert.equal(JSON.parse(toHttpResponse(fault, 'id').body).code, 'GW_FAULT_INJECTED');
  assert.equal(toGrpcResponse(fault, 'id').headers['grpc-status'], '9');
});

test('0 % never draws, 100 % always does', async () => {
  const ex = { fault: undefined } as Exchange;
  const signal = new AbortController().signal;
  for (let i = 0; i < 1000; i++) await injectFault(compileFault({ abort: { percent: 0, httpStatus: 503 } }), 1000, signal, ex);
  assert.equal(ex.fault, undefined);
  await assert.rejects(injectFault(compileFault({ abort: { percent: 100, httpStatus: 503 } }), 1000, signal, ex), InjectedFault);
  assert.equal(ex.fault, 'abort');
});
