// A worker's audit trail in multi-process mode: records leave in batches (up to AUDIT_BATCH_MS or AUDIT_BATCH_RECORDS),
// stamped where they happened; `close` sends what is left; `sent()` waits for the last batch to leave; the refusal state is the
// writer's (the primary's), as last told.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises';
import { AUDIT_BATCH_MS, AUDIT_BATCH_RECORDS } from '../../../gateway/audit/batching.js';
import { createRelayTrail } from '../../../gateway/audit/relay.js';

test('one batch per AUDIT_BATCH_MS, stamped at append; close sends the rest; sent() waits for the last batch', async () => {
  const batches: object[][] = [];
  const callbacks: (() => void)[] = [];
  const trail = createRelayTrail({ file: 'unused', ingressAllows: true }, (records, sent) => {
    batches.push(records);
    callbacks.push(sent);
  });
  assert.equal(trail.ingressAllows, true);
  trail.append('ingress', { requestId: 'a' });
  trail.append('egress', { host: 'example.com' });
  assert.equal(batches.length, 0, 'nothing leaves on the request path');
  await nextTurn();
  assert.equal(batches.length, 0, 'a batch waits for more records');
  await delay(AUDIT_BATCH_MS + 10);
  assert.equal(batches.length, 1);
  assert.deepEqual(
    batches[0]!.map((r) => Object.keys(r)),
    [
      ['source', 'time', 'requestId'],
      ['source', 'time', 'host'],
    ],
  );
  assert.match((batches[0]![0] as { time: string }).time, /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);

  trail.append('ingress', { requestId: 'b' });
  trail.close();
  assert.equal(batches.length, 2, 'close sends at once');
  trail.append('ingress', { requestId: 'late' });
  await nextTurn();
  assert.equal(batches.length, 2, 'nothing after close');

  let done = false;
  const sent = trail.sent().then(() => (done = true));
  await nextTurn();
  assert.equal(done, false, 'the last batch has not left yet');
  callbacks[1]!();
  await sent;
});

test('a full batch leaves at once', () => {
  const batches: object[][] = [];
  const trail = createRelayTrail({ file: 'unused' }, (records, sent) => {
    batches.push(records);
    sent();
  });
  for (let i = 0; i < AUDIT_BATCH_RECORDS; i++) trail.append('egress', { id: i });
  assert.deepEqual(batches.map((b) => b.length), [AUDIT_BATCH_RECORDS]);
  trail.close();
  assert.equal(batches.length, 1, 'nothing was left');
});

test('refusing is what the writer last said', () => {
  const trail = createRelayTrail({ file: 'unused' }, (_records, sent) => sent());
  assert.equal(trail.refusing(), false);
  trail.setRefusing(true);
  assert.equal(trail.refusing(), true);
  trail.setRefusing(false);
  assert.equal(trail.refusing(), false);
});
