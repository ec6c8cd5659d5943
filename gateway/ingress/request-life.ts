// A request's life: aborted when its client leaves (HTTP/1 close, RST_STREAM) or a deadline runs out, with the
// reason; the body read, the admission queue and the upstream exchange listen to it to stop at once.
// Written by hand rather than with an AbortController: one controller per request (its EventTarget signal, and the
// listener added and removed on it by each upstream exchange) cost S1 and S3 about 10 % per core on Node 20 in the
// bench (docs/performance.md, "What changed the figures"). Only what the request path uses is here.

/**
 * The part of AbortSignal the request path reads. An AbortSignal is one too, so callers outside a request
 * (health checks, mirrors) pass their own.
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export class RequestLife implements Cancellation {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined = undefined;

  /** Ends the life (the first reason stays) and tells each listener once, as an AbortSignal would. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (err) {
        // As EventTarget does: one failing listener neither stops the others nor throws into whoever aborted.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Called once on abort (so `once` changes nothing); never for a life already over (as AbortSignal). */
  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    const at = listeners ? listeners.indexOf(listener) : -1;
    if (at >= 0) listeners!.splice(at, 1);
  }
}

/** Waits `ms`, or rejects with the cancellation's reason as soon as it is cancelled. */
export function pause(ms: number, cancel: Cancellation): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cancel.aborted) return reject(cancel.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancel.reason);
    };
    const timer = setTimeout(() => {
      cancel.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    cancel.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A life within another, with a deadline of its own (a retry's per-try timeout): it ends with its parent, or after
 * `ms` with a TimeoutError (the name undici and AbortSignal.timeout use). `release` once it is no longer needed.
 */
export function withDeadline(parent: Cancellation, ms: number): { life: RequestLife; timedOut(): boolean; release(): void } {
  const life = new RequestLife();
  let timedOut = false;
  const follow = () => life.abort(parent.reason);
  parent.addEventListener('abort', follow, { once: true });
  if (parent.aborted) follow();
  const timer = setTimeout(() => {
    timedOut = true;
    life.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, ms).unref();
  return {
    life,
    timedOut: () => timedOut,
    release() {
      clearTimeout(timer);
      parent.removeEventListener('abort', follow);
    },
  };
}
