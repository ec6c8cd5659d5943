// Which endpoint of an upstream a request goes to. Three policies, as Envoy names them:
//   roundRobin      smooth weighted round robin (nginx's): each pick adds every endpoint's weight to its score
//                   and takes the highest, which then gives back the total; the order is even and deterministic.
//   leastRequest    power of two choices: two endpoints at random, the one with fewer requests in flight
//                   (per unit of weight). Near-best spread without scanning, and no herd onto one idle endpoint.
//   consistentHash  ring hash (Karger et al., Envoy's ring_hash): each endpoint owns points on a 32-bit ring in
//                   proportion to its weight, a key goes to the first point at or after its hash. When an
//                   endpoint joins or leaves, only the keys of its own arcs move (~1/N of them).
// Only endpoints that are `available` are picked, unless fewer than the panic threshold are: then all are
// (sending to all beats overloading the few left; Envoy's healthy panic threshold). With none available the
// pick is `undefined` and the caller answers 503. A retry avoids the endpoints its request already tried while
// another one can be picked (Envoy's previous_hosts retry predicate, which Istio sets on every retry policy): under
// consistentHash it goes to the next endpoint on the ring.
// Picks scan the endpoint list and allocate nothing (a retry's pick one closure): upstreams have a handful of
// endpoints, not thousands.
// Hand-written: no maintained library offers these over our own endpoint objects.
import { createHash } from 'node:crypto';

export type BalancerPolicy = 'roundRobin' | 'leastRequest' | 'consistentHash';

/** What the balancer reads and keeps on an endpoint. */
export interface Balanced {
  readonly address: string;
  readonly weight: number;
  /** Requests in flight on it. */
  active: number;
  /** Smooth weighted round robin's running score. */
  score: number;
}

export interface Balancer<E extends Balanced> {
  /**
   * `hashKey` is only read by `consistentHash` (a request without a key gets a random endpoint). `tried`: the
   * endpoints a retried request already went to, picked again only when no other one can be.
   */
  pick(endpoints: readonly E[], available: (e: E) => boolean, hashKey: string | undefined, tried?: readonly E[]): E | undefined;
  /** Called when the endpoint list changes (DNS): the ring is rebuilt from it. */
  rebuild(endpoints: readonly E[]): void;
}

/** Ring points per unit of weight: 160 as in ketama, enough for a spread within a few percent. */
const POINTS_PER_WEIGHT = 160;

export function createBalancer<E extends Balanced>(policy: BalancerPolicy, panicThresholdPercent: number): Balancer<E> {
  /**
   * All endpoints when too few are available (panic), `available` otherwise, or `undefined` when none is; without
   * the `tried` ones when that leaves any. The panic threshold counts what is available, not what was tried.
   */
  const eligibility = (endpoints: readonly E[], available: (e: E) => boolean, tried: readonly E[] | undefined): ((e: E) => boolean) | undefined => {
    let count = 0;
    for (const e of endpoints) if (available(e)) count++;
    if (count === 0) return undefined;
    const eligible = count * 100 < panicThresholdPercent * endpoints.length ? everyEndpoint : available;
    if (!tried?.length) return eligible;
    const untried = (e: E) => eligible(e) && !tried.includes(e);
    return endpoints.some(untried) ? untried : eligible;
  };
  const over = (choose: (endpoints: readonly E[], eligible: (e: E) => boolean) => E | undefined): Balancer<E> => ({
    pick(endpoints, available, _hashKey, tried) {
      const eligible = eligibility(endpoints, available, tried);
      return eligible && choose(endpoints, eligible);
    },
    rebuild() {},
  });
  if (policy === 'roundRobin') return over(smoothWeightedPick);
  if (policy === 'leastRequest') return over(twoChoicesPick);
  let ring = buildRing<E>([]);
  return {
    pick(endpoints, available, hashKey, tried) {
      const eligible = eligibility(endpoints, available, tried);
      if (!eligible) return undefined;
      if (hashKey === undefined) return twoChoicesPick(endpoints, eligible);
      return ringPick(ring, hashOf(hashKey), eligible);
    },
    rebuild(endpoints) {
      ring = buildRing(endpoints);
    },
  };
}

const everyEndpoint = () => true;

function smoothWeightedPick<E extends Balanced>(endpoints: readonly E[], eligible: (e: E) => boolean): E | undefined {
  let best: E | undefined;
  let total = 0;
  for (const e of endpoints) {
    if (!eligible(e)) continue;
    e.score += e.weight;
    total += e.weight;
    if (!best || e.score > best.score) best = e;
  }
  if (best) best.score -= total;
  return best;
}

function twoChoicesPick<E extends Balanced>(endpoints: readonly E[], eligible: (e: E) => boolean): E | undefined {
  let count = 0;
  for (const e of endpoints) if (eligible(e)) count++;
  if (count === 0) return undefined;
  const first = nthEligible(endpoints, eligible, Math.floor(Math.random() * count));
  if (count === 1) return first;
  // A second, distinct choice: a random one of the other count - 1.
  let second = Math.floor(Math.random() * (count - 1));
  if (second >= indexAmongEligible(endpoints, eligible, first)) second++;
  const other = nthEligible(endpoints, eligible, second);
  return other.active * first.weight < first.active * other.weight ? other : first;
}

function nthEligible<E>(endpoints: readonly E[], eligible: (e: E) => boolean, n: number): E {
  for (const e of endpoints) if (eligible(e) && n-- === 0) return e;
  throw new Error('nthEligible: out of range');
}

function indexAmongEligible<E>(endpoints: readonly E[], eligible: (e: E) => boolean, target: E): number {
  let i = 0;
  for (const e of endpoints) {
    if (e === target) return i;
    if (eligible(e)) i++;
  }
  return i;
}

interface Ring<E> {
  hashes: Uint32Array;
  owners: E[];
}

/** The ring: points sorted by hash; each point's owner. Points are hashes of `address_i`, so they depend on the address only. */
export function buildRing<E extends Balanced>(endpoints: readonly E[]): Ring<E> {
  const points: { hash: number; owner: E }[] = [];
  for (const owner of endpoints) {
    for (let i = 0; i < owner.weight * POINTS_PER_WEIGHT; i++) points.push({ hash: hashOf(`${owner.address}_${i}`), owner });
  }
  points.sort((a, b) => a.hash - b.hash);
  return { hashes: Uint32Array.from(points, (p) => p.hash), owners: points.map((p) => p.owner) };
}

/** The owner of the first point at or after `hash`, walking on past endpoints that are not eligible. */
function ringPick<E>(ring: Ring<E>, hash: number, eligible: (e: E) => boolean): E | undefined {
  const { hashes, owners } = ring;
  let lo = 0;
  let hi = hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hashes[mid]! < hash) lo = mid + 1;
    else hi = mid;
  }
  for (let i = 0; i < owners.length; i++) {
    const owner = owners[(lo + i) % owners.length]!;
    if (eligible(owner)) return owner;
  }
  return undefined;
}

/** 32 bits of MD5: well spread, and the same in every process (a key stays put across restarts and replicas). */
export function hashOf(key: string): number {
  return createHash('md5').update(key).digest().readUInt32BE(0);
}
