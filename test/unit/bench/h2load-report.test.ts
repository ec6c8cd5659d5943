// The bench's readers of what it measured: h2load's summary (S1-h2, S3-h2), and ratios against another scenario's
// figure (S3-trace1 against S3-traceoff), on outputs captured from real runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseH2load } from '../../bench/h2load.js';
import { baseComparison, summarize, type Sample } from '../../bench/report.js';
import { roundOrder, type PeerName, type ScenarioId } from '../../bench/scenarios.js';

// h2load 1.52 against the bench's nginx peer (-c4 -m4 -D3); one answer arrived after the end.
const H2LOAD_OUT = `finished in 3.00s, 508.67 req/s, 19.07KB/s
requests: 1526 total, 1542 started, 1526 done, 1526 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1527 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 57.20KB (58577) total, 12.36KB (12656) headers (space savings 91.54%), 4.47KB (4581) data
`;

test('h2load: 2xx answers that completed, no more; the run time', () => {
  assert.deepEqual(parseH2load(H2LOAD_OUT), { succeeded: 1526, durationS: 3, errors: 0 });
});

test('h2load: a 503 is an error, though h2load counts it as succeeded', () => {
  const out = H2LOAD_OUT.replace('1527 2xx, 0 3xx, 0 4xx, 0 5xx', '1400 2xx, 0 3xx, 0 4xx, 126 5xx');
  assert.deepEqual(parseH2load(out), { succeeded: 1400, durationS: 3, errors: 126 });
});

test('h2load: output without its summary is refused, not read as zero', () => {
  assert.throws(() => parseH2load('starting benchmark...\nStopped all clients for thread #0\n'), /cannot parse h2load output/);
});

const sample = (scenario: ScenarioId, peer: PeerName, requests: number, cpuSeconds: number, round = 1): Sample => ({
  scenario,
  peer,
  round,
  load: { requests, durationS: 4, rps: requests / 4, p50Ms: 1, p99Ms: 2, errors: 0 },
  usage: { cpuSeconds, peakRssBytes: 2 ** 27 },
});

test('a tracing scenario is compared with the same peer in its baseline scenario', () => {
  const cells = summarize(
    [sample('S3', 'portcullis', 8000, 1), sample('S3', 'haproxy', 10_000, 1), sample('S3-traceoff', 'portcullis', 8000, 1), sample('S3-trace1', 'portcullis', 6000, 1)],
    () => undefined,
  );
  const ratio = (scenario: ScenarioId) => cells.find((c) => c.scenario === scenario)?.ratio;
  assert.equal(ratio('S3-trace1'), 0.75);
  assert.equal(ratio('S3-traceoff'), 1);
  assert.equal(cells.find((c) => c.scenario === 'S3' && c.peer === 'portcullis')?.ratio, 0.8);
});

test('a variant is also compared round by round with its baseline scenario', () => {
  const cells = summarize(
    [
      sample('S4-new', 'portcullis', 1000, 1, 1),
      sample('S4-new-auditoff', 'portcullis', 1000, 1, 1),
      sample('S4-new-audit', 'portcullis', 900, 1, 1),
      sample('S4-new-auditoff', 'portcullis', 1000, 1, 2),
      sample('S4-new-audit', 'portcullis', 1000, 1, 2),
      sample('S4-new-auditoff', 'portcullis', 1000, 1, 3),
      sample('S4-new-audit', 'portcullis', 980, 1, 3),
    ],
    () => undefined,
  );
  const audit = cells.find((c) => c.scenario === 'S4-new-audit')!;
  assert.equal(audit.ratio, 0.98);
  assert.deepEqual(audit.roundRatios, { low: 0.9, median: 0.98, high: 1 });
  assert.equal(cells.find((c) => c.scenario === 'S4-new')?.roundRatios, undefined);
});

test('a --base run says, per scenario, how this build did against the base build round by round', () => {
  // Three rounds of S1 (this build's requests, the base build's), then an S3 without a base build.
  const samples = [
    ...[1100, 900, 1050].flatMap((requests, i) => [sample('S1', 'portcullis', requests, 1, i + 1), sample('S1', 'portcullis-base', 1000, 1, i + 1)]),
    sample('S3', 'portcullis', 700, 1, 1),
    sample('S3', 'haproxy', 1000, 1, 1),
  ];
  assert.equal(
    baseComparison(samples, ['S1', 'S3']),
    [
      '| scenario | portcullis / portcullis-base per core, median of rounds | range | rounds ahead | by round |',
      '|---|---:|---|---|---|',
      '| S1 | 1.050 | 0.90–1.10 | 2 of 3 | 1.10, 0.90, 1.05 |',
    ].join('\n'),
  );
  assert.equal(baseComparison(samples.slice(6), ['S3']), '', 'no table without a base build');
});

test('each round measures a variant next to its baseline, in turned and reversed orders', () => {
  const items = (['S1', 'S4-new', 'S4-new-auditoff', 'S4-new-audit'] as ScenarioId[]).map((scenario) => ({ scenario }));
  const orders = [1, 2, 3, 4, 5, 6].map((round) => roundOrder(items, round).map((i) => i.scenario));
  for (const order of orders) assert.equal(order[0], 'S1', 'groups keep their order');
  assert.deepEqual(orders[0], ['S1', 'S4-new-auditoff', 'S4-new-audit', 'S4-new']);
  assert.deepEqual(orders[3], ['S1', 'S4-new', 'S4-new-audit', 'S4-new-auditoff']);
  const group: ScenarioId[] = ['S4-new', 'S4-new-auditoff', 'S4-new-audit'];
  for (const a of group) {
    for (const b of group.filter((x) => x !== a)) {
      const aFirst = orders.filter((o) => o.indexOf(a) < o.indexOf(b)).length;
      assert.equal(aFirst, 3, `over twice as many rounds as the group has members, ${a} runs before ${b} in half`);
    }
  }
  const pair = [1, 2, 3, 4].map((round) => roundOrder([{ scenario: 'S3-traceoff' as ScenarioId }, { scenario: 'S3-trace1' as ScenarioId }], round)[0]!.scenario);
  assert.deepEqual(pair, ['S3-trace1', 'S3-traceoff', 'S3-traceoff', 'S3-trace1'], 'a pair alternates');
});
