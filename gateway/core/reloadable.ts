// A reload applies a whole config or nothing of it. Each part of the running gateway (ingress runtime, edge
// listeners, admin plane, and whatever else becomes reloadable) first builds everything the new config needs
// without touching what serves now: new runtimes, new certificates read and parsed, new sockets bound. Only when
// every part has prepared does each commit, and a commit is a swap of references that cannot fail. If any part
// cannot prepare, the parts prepared before it are aborted (sockets bound for the new config are closed again) and
// the running config stays entirely. Caddy's Provision-new / Cleanup-old lifecycle, split in two phases.
import type { Config } from '../config/schema.js';

/** What one part built for a new config, not yet in service. */
export interface PreparedChange {
  /** Puts the prepared state in service and retires the old one (drained or closed later). Never throws. */
  commit(): void;
  /** Releases what was prepared (closes sockets bound for it); the running state was never touched. */
  abort(): Promise<void>;
}

/** A part of the gateway that a reload rebuilds. */
export interface Reloadable {
  prepare(config: Config): Promise<PreparedChange>;
}

/** A refusal that points at the config field it is about (`/listeners/1/port`), for the located reload answer. */
export class ReloadRefused extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'ReloadRefused';
  }
}

/** Prepares every part in order, then commits them all; on any failure aborts the prepared ones and rethrows. */
export async function prepareAll(parts: readonly Reloadable[], config: Config): Promise<PreparedChange> {
  const prepared: PreparedChange[] = [];
  try {
    for (const part of parts) prepared.push(await part.prepare(config));
  } catch (err) {
    await Promise.all(prepared.map((p) => p.abort()));
    throw err;
  }
  return {
    commit: () => prepared.forEach((p) => p.commit()),
    abort: async () => void (await Promise.all(prepared.map((p) => p.abort()))),
  };
}
