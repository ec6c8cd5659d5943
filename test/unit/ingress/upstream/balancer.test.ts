// The three load-balancing policies on their own: spread, stickiness, and what happens when endpoints are out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer, type Balanced } from '../../../../gateway/ingress/upstream/balancer.js';

const endpoint = (address: string, weight = 1): Balanced => ({ address, weight, active: 0, score: 0 });
const always = () => true;

function counts<E extends Balanced>(picks: (E | undefined)[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of picks) out.set(p?.address ?? 'none', (out.get(p?.address ?? 'none') ?? 0) + 1);
  return out;
}

describe('roundRobin (smooth weighted)', () => {
  it('lands within ±3 % of each weight over 2,000 picks, evenly interleaved', () => {
    const endpoints = [endpoint('a:1', 1), endpoint('b:1', 2), endpoint('c:1', 7)];
    const balancer = createBalancer<Balanced>('roundRobin', 50);
    const picks = Array.from({ length: 2_000 }, () => balancer.pick(endpoints, always, undefined));
    const seen = counts(picks);
    for (const [address, share] of [['a:1', 0.1], ['b:1', 0.2], ['c:1', 0.7]] as const) {
      assert.ok(Math.abs(seen.get(address)! / 2_000 - share) <= 0.03, `${address}: ${seen.get(address)}`);
    }
    // Smooth: the heavy endpoint never gets more than its share in a row (nginx's a a a a a a a b b c would).
    const firstTen = picks.slice(0, 10).map((p) => p!.address);
    assert.ok(firstTen.filter((a) => a === 'c:1').length === 7 && firstTen.slice(0, 3).includes('b:1'), firstTen.join(' '));
  });

  it('skips endpoints that are out, and sends to all below the panic threshold', () => {
    const endpoints = [endpoint('a:1'), endpoint('b:1'), endpoint('c:1'), endpoint('d:1')];
    const balancer = createBalancer<Balanced>('roundRobin', 50);
    const onlyA = counts(Array.from({ length: 100 }, () => balancer.pick(endpoints, (e) => e.address !== 'b:1', undefined)));
    assert.equal(onlyA.get('b:1'), undefined);
    // One of four available (25 % < 50 %): panic, every endpoint gets its turn.
    const panic = counts(Array.from({ length: 100 }, () => balancer.pick(endpoints, (e) => e.address === 'a:1', undefined)));
    assert.deepEqual([...panic.values()], [25, 25, 25, 25]);
    assert.equal(balancer.pick(endpoints, () => false, undefined), undefined, 'none available: no pick (503)');
  });
});

describe('leastRequest (power of two choices)', () => {
  it('prefers the endpoint with fewer requests in flight', () => {
    const endpoints = [endpoint('a:1'), endpoint('b:1')];
    endpoints[0]!.active = 10;
    const balancer = createBalancer<Balanced>('leastRequest', 50);
    const seen = counts(Array.from({ length: 200 }, () => balancer.pick(endpoints, always, undefined)));
    assert.equal(seen.get('b:1'), 200);
  });

  it('spreads idle endpoints evenly, and never picks one that is out', () => {
    const endpoints = [endpoint('a:1'), endpoint('b:1'), endpoint('c:1')];
    const balancer = createBalancer<Balanced>('leastRequest', 0);
    const seen = counts(Array.from({ length: 3_000 }, () => balancer.pick(endpoints, (e) => e.address !== 'c:1', undefined)));
    assert.equal(seen.get('c:1'), undefined);
    assert.ok(Math.abs(seen.get('a:1')! - 1_500) < 150, String(seen.get('a:1')));
  });
});

describe('consistentHash (ring hash)', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  const owners = (endpoints: Balanced[], available: (e: Balanced) => boolean = always) => {
    const balancer = createBalancer<Balanced>('consistentHash', 0);
    balancer.rebuild(endpoints);
    return keys.map((k) => balancer.pick(endpoints, available, k)!.address);
  };

  it('keeps a key on one endpoint, and spreads keys roughly evenly', () => {
    const endpoints = ['a:1', 'b:1', 'c:1', 'd:1'].map((a) => endpoint(a));
    const first = owners(endpoints);
    assert.deepEqual(owners(endpoints), first);
    for (const share of counts(first.map((address) => ({ address }) as Balanced)).values()) assert.ok(share > 1_800 && share < 3_200, String(share));
  });

  it('moves only the keys of an endpoint that leaves (~1/N), and ~1/(N+1) to one that joins', () => {
    const four = ['a:1', 'b:1', 'c:1', 'd:1'].map((a) => endpoint(a));
    const before = owners(four);
    const after = owners(four.filter((e) => e.address !== 'd:1'));
    const moved = before.filter((owner, i) => owner !== after[i]);
    assert.ok(moved.every((owner) => owner === 'd:1'), 'only d’s keys moved');
    console.log(`# ring hash: ${moved.length} of 10,000 keys moved when 1 of 4 endpoints left`);
    assert.ok(moved.length > 1_800 && moved.length < 3_200);

    const five = [...four, endpoint('e:1')];
    const joined = owners(five);
    const movedOnJoin = before.filter((owner, i) => owner !== joined[i]);
    assert.ok(joined.every((owner, i) => owner === before[i] || owner === 'e:1'), 'keys only moved to the new endpoint');
    console.log(`# ring hash: ${movedOnJoin.length} of 10,000 keys moved when a 5th endpoint joined`);
    assert.ok(movedOnJoin.length > 1_400 && movedOnJoin.length < 2_600);
  });

  it('walks past an endpoint that is out without moving anyone else’s keys', () => {
    const endpoints = ['a:1', 'b:1', 'c:1', 'd:1'].map((a) => endpoint(a));
    const before = owners(endpoints);
    const without = owners(endpoints, (e) => e.address !== 'b:1');
    assert.ok(before.every((owner, i) => owner === 'b:1' || owner === without[i]));
    assert.ok(!without.includes('b:1'));
  });
});

describe('a retry avoids the endpoints its request tried (Envoy’s previous_hosts)', () => {
  for (const policy of ['roundRobin', 'leastRequest', 'consistentHash'] as const) {
    it(`${policy}: never an endpoint already tried while another is available; one tried when none is left`, () => {
      const endpoints = ['a:1', 'b:1', 'c:1'].map((a) => endpoint(a));
      const [a, b, c] = endpoints as [Balanced, Balanced, Balanced];
      const balancer = createBalancer<Balanced>(policy, 50);
      balancer.rebuild(endpoints);
      for (let i = 0; i < 300; i++) {
        const key = policy === 'consistentHash' ? `user-${i}` : undefined;
        const first = balancer.pick(endpoints, always, key)!;
        const second = balancer.pick(endpoints, always, key, [first])!;
        assert.notEqual(second, first);
        const third = balancer.pick(endpoints, always, key, [first, second])!;
        assert.ok(third !== first && third !== second);
        assert.ok(endpoints.includes(balancer.pick(endpoints, always, key, [a, b, c])!), 'all tried: still a pick');
      }
      // Out (c) and tried (a): b, the one left, whatever the policy.
      assert.equal(balancer.pick(endpoints, (e) => e !== c, 'user-1', [a]), b);
      // Tried (a) and every other out: under the panic threshold (1 of 3 < 50 %) every endpoint is eligible, so an
      // untried one; without a panic threshold, a again rather than a 503.
      assert.notEqual(balancer.pick(endpoints, (e) => e === a, 'user-1', [a]), a);
      const noPanic = createBalancer<Balanced>(policy, 0);
      noPanic.rebuild(endpoints);
      assert.equal(noPanic.pick(endpoints, (e) => e === a, 'user-1', [a]), a);
    });
  }

  it('the panic threshold counts what is available, not what was tried', () => {
    const endpoints = ['a:1', 'b:1', 'c:1', 'd:1'].map((a) => endpoint(a));
    const [a, b, c] = endpoints as [Balanced, Balanced, Balanced];
    const balancer = createBalancer<Balanced>('roundRobin', 50);
    // Three of four available (75 %): no panic, even with two of them tried; d is out and stays out.
    const picks = counts(Array.from({ length: 50 }, () => balancer.pick(endpoints, (e) => e.address !== 'd:1', undefined, [a, b])));
    assert.deepEqual([...picks.entries()], [[c.address, 50]]);
  });
});
