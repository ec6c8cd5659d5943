// The access line's writer (recordLine in gateway/core/log.ts) against pino itself: the same logger, the same record,
// the same bytes, with pino's own `info` as the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createLogger, recordLine, type Logger } from '../../../gateway/core/log.js';

/** A logger as the pipeline has one (createLogger, then a child per virtual host) writing into an array. */
function capturing(level = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const root = createLogger(level, { write: (line: string) => void lines.push(line) });
  return { logger: root.child({ listener: 'public', vhost: 'api "edge"' }), lines };
}

/** Two lines written in different milliseconds differ only in their time. */
const timeless = (line: string) => line.replace(/"time":"[^"]*"/, '"time":"T"');

const RECORD = {
  event: 'REQUEST',
  requestId: 'r-1',
  traceId: undefined,
  method: 'GET',
  path: '/a"b\\c\nd\u0001é😀\ud800',
  status: 200,
  code: undefined,
  latencyMs: 1.25,
  notANumber: Number.NaN,
  nothing: null,
  allowed: true,
  decision: { allowed: true, policy: 'p', rule: 0 },
  tls: Object.freeze({ sni: 'api.example', version: 'TLSv1.3', cipher: undefined }),
  bytesOut: 0,
};

test('writes byte for byte the line pino writes for the same record, escapes, nested objects and skipped fields included', () => {
  const { logger, lines } = capturing();
  recordLine(logger)(RECORD);
  logger.info(RECORD);
  assert.equal(lines.length, 2);
  assert.equal(timeless(lines[0]!), timeless(lines[1]!));
  assert.match(lines[0]!, /^\{"level":"info","time":"[^"]+","svc":"portcullis","listener":"public","vhost":"api \\"edge\\"","event":"REQUEST",/);
  assert.ok(lines[0]!.endsWith('}\n'));
  assert.equal(JSON.parse(lines[0]!).traceId, undefined);
});

test('follows the logger level as it changes at run time (a reload), writing nothing above info', () => {
  const { logger, lines } = capturing('warn');
  const line = recordLine(logger);
  line(RECORD);
  assert.equal(lines.length, 0);
  logger.level = 'info';
  line(RECORD);
  assert.equal(lines.length, 1);
  logger.level = 'silent';
  line(RECORD);
  assert.equal(lines.length, 1);
});

test('a logger whose lines pino shapes further (here a mixin) gets pino itself', () => {
  const lines: string[] = [];
  const logger = pino({ mixin: () => ({ mixed: 1 }) }, { write: (line: string) => void lines.push(line) });
  recordLine(logger)({ event: 'REQUEST' });
  assert.equal(JSON.parse(lines[0]!).mixed, 1);
});
