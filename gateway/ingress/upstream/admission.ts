// How many requests one upstream may have at once, and how many may wait for a slot: a bound that holds
// whatever the clients do. Over it the answer is 503 at once, not a queue that grows (the HTTP/2 Rapid
// Reset floods of CVE-2023-44487 grew exactly such queues), and a request whose client left while it waited
// gives its place back instead of reaching the upstream later. Hand-written because undici's pool queue can
// neither be bounded nor have an entry removed (an aborted request stays queued until a connection frees up).
import { GatewayError } from '../../core/errors.js';
import type { Cancellation } from '../request-life.js';

export interface AdmissionLimits {
  /** Requests running upstream at once (the pool's connections, or an h2 session's streams). */
  concurrency: number;
  /** Requests waiting for one of those; beyond it they are refused. */
  maxPending: number;
}

export interface Admission {
  /**
   * Takes a slot: `undefined` when one was free (the common case allocates nothing), else a promise that
   * resolves when one frees up, or rejects with the signal's reason if the request is cancelled first, or
   * with GW_UPSTREAM_TIMEOUT after `timeoutMs`. Throws GW_UPSTREAM_OVERLOADED when the queue is full.
   */
  acquire(signal: Cancellation, timeoutMs: number): Promise<void> | undefined;
  /** Gives a slot back: to the oldest waiting request, or to the pool. */
  release(): void;
  readonly active: number;
  readonly pending: number;
}

interface Waiter {
  resolve(): void;
  signal: Cancellation;
  timer: NodeJS.Timeout;
  onAbort(): void;
}

export function createAdmission(limits: AdmissionLimits): Admission {
  let active = 0;
  const queue: Waiter[] = [];
  return {
    acquire(signal, timeoutMs) {
      if (active < limits.concurrency) {
        active++;
        return undefined;
      }
      if (queue.length >= limits.maxPending) throw new GatewayError('GW_UPSTREAM_OVERLOADED', 'max_pending_requests');
      return new Promise<void>((resolve, reject) => {
        const leave = (reason: unknown) => {
          queue.splice(queue.indexOf(waiter), 1);
          clearTimeout(waiter.timer);
          signal.removeEventListener('abort', waiter.onAbort);
          reject(reason);
        };
        const waiter: Waiter = {
          resolve,
          signal,
          timer: setTimeout(() => leave(new GatewayError('GW_UPSTREAM_TIMEOUT', 'queue_wait')), timeoutMs),
          onAbort: () => leave(signal.reason),
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
        queue.push(waiter);
      });
    },
    release() {
      const next = queue.shift();
      if (!next) {
        active--;
        return;
      }
      // The slot passes straight to the next request; `active` does not change.
      next.signal.removeEventListener('abort', next.onAbort);
      clearTimeout(next.timer);
      next.resolve();
    },
    get active() {
      return active;
    },
    get pending() {
      return queue.length;
    },
  };
}
