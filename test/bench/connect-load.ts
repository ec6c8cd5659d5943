// The S4 load generator: wrk cannot speak CONNECT. N workers each open a CONNECT tunnel through the
// proxy, run TLS to the destination inside it (SNI = the CONNECT host, as the gateway's domain-fronting
// check requires) and send keep-alive GETs; or, with newTunnelPerRequest, a fresh tunnel per request.
// Run as its own process on the load core (settings in BENCH_CONNECT_LOAD, JSON); prints a LoadResult.
// Bounded by time and by request count; 127.0.0.1 only.
import net from 'node:net';
import { createHistogram } from 'node:perf_hooks';
import tls from 'node:tls';
import type { LoadResult } from './wrk.js';

export interface ConnectLoadOptions {
  proxyPort: number;
  host: string;
  port: number;
  caPem: string;
  durationS: number;
  concurrency: number;
  newTunnelPerRequest: boolean;
  maxRequests: number;
}

const HEAD_END = '\r\n\r\n';

/** Reads one HTTP/1.1 response with a Content-Length body (all the destination sends) from `socket`. */
function readResponse(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      const end = buffer.indexOf(HEAD_END);
      if (end < 0) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
      if (buffer.length < end + HEAD_END.length + length) return;
      done();
      resolve(Number(buffer.slice(9, 12)));
    };
    const onEnd = () => {
      done();
      reject(new Error('connection closed mid-response'));
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('error', onEnd);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.once('error', onEnd);
    socket.once('end', onEnd);
  });
}

/** CONNECT, then reads the proxy's answer head (it sends nothing more before our ClientHello). */
export function connectTunnel(o: Pick<ConnectLoadOptions, 'proxyPort' | 'host' | 'port'>): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(o.proxyPort, '127.0.0.1');
    socket.setNoDelay(true);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes(HEAD_END)) return;
      socket.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        socket.destroy();
        reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      } else resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`CONNECT ${o.host}:${o.port} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\n\r\n`);
  });
}

export async function runConnectLoad(o: ConnectLoadOptions): Promise<LoadResult> {
  const histogram = createHistogram();
  let requests = 0;
  let errors = 0;
  let session: Buffer | undefined;
  const started = performance.now();
  const deadline = started + o.durationS * 1000;
  const request = `GET / HTTP/1.1\r\nHost: ${o.host}\r\n${o.newTunnelPerRequest ? 'Connection: close\r\n' : ''}\r\n`;

  const openTls = async (): Promise<tls.TLSSocket> => {
    const raw = await connectTunnel(o);
    return new Promise((resolve, reject) => {
      // Resumed client sessions keep the load generator cheap; the proxy only relays the bytes either way.
      const socket = tls.connect({ socket: raw, servername: o.host, ca: o.caPem, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
      socket.on('session', (s: Buffer) => (session = s));
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
    });
  };

  const worker = async () => {
    let socket: tls.TLSSocket | undefined;
    while (performance.now() < deadline && requests + errors < o.maxRequests) {
      const t0 = process.hrtime.bigint();
      try {
        if (socket === undefined) {
          socket = await openTls();
          socket.on('error', () => undefined);
        }
        const t1 = o.newTunnelPerRequest ? t0 : process.hrtime.bigint();
        socket.write(request);
        const status = await readResponse(socket);
        if (status !== 200) throw new Error(`status ${status}`);
        histogram.record(Math.max(1, Number(process.hrtime.bigint() - t1)));
        requests++;
        if (o.newTunnelPerRequest) {
          socket.destroy();
          socket = undefined;
        }
      } catch {
        errors++;
        socket?.destroy();
        socket = undefined;
      }
    }
    socket?.destroy();
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const durationS = (performance.now() - started) / 1000;
  return {
    requests,
    durationS,
    rps: requests / durationS,
    p50Ms: histogram.percentile(50) / 1e6,
    p99Ms: histogram.percentile(99) / 1e6,
    p999Ms: histogram.percentile(99.9) / 1e6,
    errors,
  };
}

if (process.env.BENCH_CONNECT_LOAD) {
  const result = await runConnectLoad(JSON.parse(process.env.BENCH_CONNECT_LOAD) as ConnectLoadOptions);
  process.stdout.write(JSON.stringify(result) + '\n');
}
