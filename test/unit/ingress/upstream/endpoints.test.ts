// An upstream's endpoint set: DNS answers it dials or drops, refreshes that keep surviving endpoints (and their
// health), and passive ejection with its cap and growing time. Transports here are inert stand-ins: these tests are
// about the set's bookkeeping; test/integration/ingress/traffic.test.ts drives real upstream processes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEndpointSet, dialableAnswers, type EndpointSetOptions } from '../../../../gateway/ingress/upstream/endpoints.js';

const inert = () => ({ dispatch: async () => {}, close: async () => {}, destroy: async () => {} });
const base: Omit<EndpointSetOptions, 'static' | 'dns'> = {
  policy: 'roundRobin',
  panicThresholdPercent: 0,
  outlier: { consecutive5xx: 2, baseEjectionMs: 1_000, maxEjectionPercent: 50 },
  transport: inert,
};

describe('DNS answers', () => {
  it('dials private and public addresses; drops unspecified, link-local (metadata), multicast; loopback only when allowed', () => {
    const answers = ['10.1.2.3', 'fd00::1', '203.0.113.9', '0.0.0.0', '::', '169.254.169.254', 'fe80::1', '224.0.0.1', '255.255.255.255', '127.0.0.1', '::1', '::ffff:10.1.2.4', 'junk'];
    assert.deepEqual(dialableAnswers(answers, false), ['10.1.2.3', 'fd00::1', '203.0.113.9', '10.1.2.4']);
    assert.deepEqual(dialableAnswers(answers, true), ['10.1.2.3', 'fd00::1', '203.0.113.9', '127.0.0.1', '::1', '10.1.2.4']);
  });

  it('a refresh keeps the endpoints still answered (and their state), adds new ones, drops gone ones; a failed lookup keeps the last', async () => {
    let answers: string[] | Error = ['10.0.0.1', '10.0.0.2'];
    const closed: string[] = [];
    const set = createEndpointSet({
      ...base,
      dns: { name: 'svc.ns.svc.cluster.local', port: 8080, refreshMs: 50, allowLoopback: false, lookup: async () => {
        if (answers instanceof Error) throw answers;
        return answers;
      } },
      transport: (host) => ({ ...inert(), close: async () => void closed.push(host) }),
    });
    await set.ready;
    assert.deepEqual(set.endpoints.map((e) => e.address), ['10.0.0.1:8080', '10.0.0.2:8080']);
    const kept = set.endpoints[1]!;
    kept.errors = 1;
    answers = ['10.0.0.2', '10.0.0.3'];
    await sleep(120);
    assert.deepEqual(set.endpoints.map((e) => e.address), ['10.0.0.2:8080', '10.0.0.3:8080']);
    assert.equal(set.endpoints[0], kept, 'the same endpoint object, pool and health');
    assert.deepEqual(closed, ['10.0.0.1']);
    answers = new Error('SERVFAIL');
    await sleep(120);
    assert.equal(set.endpoints.length, 2);
    await set.close();
  });
});

describe('outlier detection', () => {
  it('ejects after consecutive failures, at most maxEjectionPercent (at least one), for base × times ejected', async () => {
    const set = createEndpointSet({ ...base, static: ['a:1', 'b:1', 'c:1'].map((address) => ({ address, weight: 1 })) });
    const [a, b, c] = set.endpoints as [typeof set.endpoints[0] & object, typeof set.endpoints[0] & object, typeof set.endpoints[0] & object];
    set.failed(a);
    set.succeeded(a);
    set.failed(a);
    assert.ok(set.available(a), 'a success in between resets the count');
    set.failed(a);
    assert.ok(!set.available(a), 'two in a row eject');
    const firstEjection = a.ejectedUntil - Date.now();
    assert.ok(firstEjection > 900 && firstEjection <= 1_000);
    set.failed(b);
    set.failed(b);
    assert.ok(set.available(b), '50 % of 3 is one endpoint: b stays in while a is out');
    for (let i = 0; i < 10; i++) assert.notEqual(set.pick(undefined), a);
    // A second ejection right after the first lasts twice as long.
    a.ejectedUntil = Date.now();
    set.failed(a);
    set.failed(a);
    assert.ok(a.ejectedUntil - Date.now() > 1_900);
    assert.ok(set.available(c));
    await set.close();
  });
});
