// Request mirroring (a route's RequestMirror filter): a fire-and-forget copy of a request to a shadow upstream, as
// Envoy's request_mirror_policies. The copy is started and never awaited: its answer is read and discarded, its
// failures are only counted, and the real request neither waits for it nor sees it fail. It goes through the shadow
// upstream's own admission, so that upstream's circuit-breaking bounds (maxRequests, maxPendingRequests) bound the
// copies in flight; a copy over them is dropped at once. A body that streams (over 64 KiB, or to an h2 upstream)
// is not mirrored: copying it would mean holding it, or slowing the real request to the shadow's pace.
import { Buffer } from 'node:buffer';
import type { Mirror } from '../stages/route-filters.js';
import type { ResponseSink, UpstreamClient, UpstreamRequest } from './clients.js';

/** `sent`: answered (any status); `dropped`: over the shadow's bounds; `failed`: no answer; `not_buffered`: its body streams. */
export type MirrorOutcome = 'sent' | 'dropped' | 'failed' | 'not_buffered';

export type MirrorSender = (route: string, mirror: Mirror, req: UpstreamRequest) => void;

const DISCARD: ResponseSink = { start() {}, data() {}, end() {} };
const DROPPED = new Set(['GW_UPSTREAM_OVERLOADED', 'GW_UPSTREAM_NO_HEALTHY']);

/**
 * `clients`: the runtime's upstream clients; `timeoutMsOf`: the shadow upstream's timeout, which also ends a copy
 * that is never answered.
 */
export function createMirrorSender(
  clients: ReadonlyMap<string, UpstreamClient>,
  timeoutMsOf: (upstream: string) => number,
  counted: (route: string, outcome: MirrorOutcome) => void,
): MirrorSender {
  return (route, mirror, req) => {
    if (mirror.percent < 100 && Math.random() * 100 >= mirror.percent) return;
    if (req.body !== null && !Buffer.isBuffer(req.body)) return counted(route, 'not_buffered');
    const client = clients.get(mirror.upstream);
    if (!client) return counted(route, 'failed');
    const timeoutMs = timeoutMsOf(mirror.upstream);
    const copy: UpstreamRequest = {
      method: req.method,
      path: req.path,
      // The same request id; the authority marked as a copy, as Envoy does, so the shadow can tell.
      headers: { ...req.headers, host: shadowAuthority(String(req.headers.host ?? '')) },
      body: req.body,
      timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      // The real request's key is its own upstream's; a consistentHash shadow picks as for a request without one.
      hashKey: undefined,
      retry: undefined,
    };
    // Started after the real request has been handed to its upstream: connecting to the shadow costs it no time.
    setImmediate(send, client, copy, () => counted(route, 'sent'), (err: unknown) => counted(route, DROPPED.has((err as { code?: string }).code ?? '') ? 'dropped' : 'failed'));
  };
}

function send(client: UpstreamClient, copy: UpstreamRequest, sent: () => void, failed: (err: unknown) => void): void {
  client.exchange(copy, DISCARD).then(sent, failed);
}

/** `shop.example.com:8443` → `shop.example.com-shadow:8443` (Envoy's `-shadow` suffix on the host). */
export function shadowAuthority(authority: string): string {
  const port = /:\d+$/.exec(authority)?.[0] ?? '';
  return `${authority.slice(0, authority.length - port.length)}-shadow${port}`;
}
