// A CONNECT tunnel: the shared decision, then dial the checked address, answer 200, read the ClientHello before
// forwarding a byte (its SNI must be the CONNECT host, and so must any later one's), pipe, and write the one audit
// record when it ends.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError, toRawHttpResponse } from '../core/errors.js';
import { looksLikeTls } from '../tls/client-hello.js';
import { attemptRecord, decide, endedEarlyError, recordAttempt, refusalRecord, type InFlight } from './decide.js';
import { parseAuthority } from './destination.js';
import { connectTcp, inspectFirstBytes } from './stages/dial.js';
import { createHandshakeWatch } from './stages/handshake-watch.js';
import { openTunnel, type TunnelOptions } from './tunnel.js';

/** Answers a refused CONNECT on the raw socket (there is no response object) and audits it. */
export function refuseOnSocket(flight: InFlight, socket: Socket, err: GatewayError): void {
  socket.end(toRawHttpResponse(err, flight.attempt.requestId));
  recordAttempt(flight, refusalRecord(flight.rt, flight.attempt, err));
}

/** The global byte limit and the deciding rule's byte budget: the smaller enforced one cuts, a dry-run one reports. */
function tunnelOptions({ rt, attempt }: InFlight): TunnelOptions {
  const budget = attempt.decision?.budget;
  const global = rt.limits.maxBytesPerTunnel;
  const enforced = budget && !budget.dryRun ? Math.min(budget.maxBytes, global ?? Infinity) : global;
  const options: TunnelOptions = { idleTimeoutMs: rt.limits.idleTimeoutMs, ...(enforced !== undefined ? { maxBytes: enforced } : {}) };
  if (budget?.dryRun) {
    const rule = attempt.decision?.rule ?? '';
    options.wouldExceed = {
      maxBytes: budget.maxBytes,
      report: () =>
        rt.wouldDeny({ kind: 'byte_budget', policy: rule, reason: 'byte_budget_exceeded', requestId: attempt.requestId, identity: attempt.identity.principal, host: attempt.dest?.host, port: attempt.dest?.port }),
    };
  }
  return options;
}

export async function handleConnect(flight: InFlight, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const { rt, attempt } = flight;
  socket.on('error', () => undefined);
  // A client that closes (or half-closes) while the attempt is decided and dialled has gone: no tunnel for it.
  let gone = false;
  const leave = (): void => {
    gone = true;
  };
  socket.once('end', leave).once('close', leave);
  const decision = await decide(rt, attempt, {
    socket,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    target: () => ({ dest: parseAuthority(req.url ?? '') }),
  });
  if (!decision.allowed) return refuseOnSocket(flight, socket, decision.error);
  try {
    const dialled = await connectTcp({ address: decision.address, family: decision.family, port: decision.target.dest.port }, rt.limits.connectTimeoutMs, rt.dial);
    if ('error' in dialled) return refuseOnSocket(flight, socket, dialled.error);
    const upstream = dialled.socket;
    socket.off('end', leave).off('close', leave);
    if (gone || socket.destroyed) {
      upstream.destroy();
      return refuseOnSocket(flight, socket, endedEarlyError(flight) ?? new GatewayError('GW_CLIENT_CANCELLED', 'client_gone'));
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const tunnel = openTunnel(socket, upstream, tunnelOptions(flight));
    flight.cut = (end) => tunnel.cut(end);
    const verdict = await inspectFirstBytes(socket, decision.target.dest, head, rt.limits.firstBytesTimeoutMs);
    // A TLS stream's later ClientHellos (after a HelloRetryRequest) are checked as the first one was.
    const watch = verdict.ok && looksLikeTls(verdict.head) ? createHandshakeWatch(decision.target.dest.host) : undefined;
    if (verdict.ok) tunnel.release(verdict.head, watch);
    else tunnel.cut(verdict.end);
    const stats = await tunnel.done;
    const refused = stats.end === 'sni_mismatch' || stats.end === 'sni_encrypted';
    const hello = verdict.ok ? watch?.refusal : verdict;
    recordAttempt(flight,
      attemptRecord(rt, attempt, {
        sni: hello?.sni ?? verdict.sni,
        detail: hello?.detail,
        allow: !refused,
        reason: refused ? stats.end : (attempt.decision?.reason ?? 'allowed_by_rule'),
        end: stats.end,
        bytesIn: stats.bytesUp,
        bytesOut: stats.bytesDown,
        alert: refused || stats.end === 'byte_budget_exceeded' ? true : undefined,
      }),
    );
  } finally {
    decision.release();
  }
}
