// When a batch of audit records leaves: the writer (trail.ts) and a worker's relay (relay.ts) both hold records for a
// moment and write or send them together. A write per record was 9 % of the gateway's CPU with a new egress tunnel
// per request (bench S4-new-audit profile: each tunnel's record came in an event-loop turn of its own).

/** How long the first record of a batch waits for more. A process killed outright (SIGKILL) loses at most this much. */
export const AUDIT_BATCH_MS = 20;
/** A batch this large leaves at once. */
export const AUDIT_BATCH_RECORDS = 256;

export interface BatchClock {
  /** A record was added; `pending`: how many wait now. Runs `leave` when the batch is full or its time is up. */
  added(pending: number): void;
  /** The batch left (by `leave` or otherwise): the next record starts a new one. */
  reset(): void;
}

export function batchClock(leave: () => void): BatchClock {
  let timer: NodeJS.Timeout | undefined;
  const reset = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  return {
    added(pending) {
      if (pending >= AUDIT_BATCH_RECORDS) leave();
      else timer ??= setTimeout(leave, AUDIT_BATCH_MS);
    },
    reset,
  };
}
