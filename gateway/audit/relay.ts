// The audit trail of a worker in multi-process mode (`run --workers N`): one hash chain has one writer, the primary
// (trail.ts there), so a worker stamps each record (source, time) and hands its records to the primary in batches
// (batching.ts), one message each, as the single process writes them in one write. The primary chains them in the order
// it receives them and tells every worker when it starts or stops refusing traffic (`onWriteFailure: refuse`).
import type { AuditConfig } from '../config/operations-schema.js';
import { batchClock } from './batching.js';
import { stamp, type AuditTrail } from './trail.js';

/** Sends one batch of stamped records to the writer; calls `sent` once the batch has left this process. */
export type AuditBatchSender = (records: object[], sent: () => void) => void;

export interface RelayTrail extends AuditTrail {
  /** What the writer last said: true while it refuses traffic because records cannot be written. */
  setRefusing(refusing: boolean): void;
  /** Resolves once every batch handed to the sender (the last one by `close`) has left this process. */
  sent(): Promise<void>;
}

export function createRelayTrail(config: AuditConfig, send: AuditBatchSender): RelayTrail {
  let pending: object[] = [];
  let refusing = false;
  let closed = false;
  let lastSent: Promise<void> = Promise.resolve();

  const flush = () => {
    clock.reset();
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    lastSent = new Promise((resolve) => send(batch, resolve));
  };
  const clock = batchClock(flush);

  return {
    ingressAllows: config.ingressAllows === true,
    append(source, fields) {
      if (closed) return;
      pending.push(stamp(source, fields));
      clock.added(pending.length);
    },
    refusing: () => refusing,
    setRefusing(value) {
      refusing = value;
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
    },
    sent: () => lastSent,
  };
}
