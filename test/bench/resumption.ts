// The HS target's second half: resumed handshakes (session tickets) must cost the proxy at least 3× less
// CPU than full ones. Like `openssl s_time -new` / `-reuse`, but `s_time` (OpenSSL 3.0) sends no SNI, which
// an SNI-routing listener rightly refuses; so a small Node client does it: each connection handshakes,
// sends one GET /s1 with Connection: close, reads the answer (in TLS 1.3 the ticket comes after the
// handshake) and closes. The proxy's own CPU is measured for each mode, as for the wrk runs.
import tls from 'node:tls';
import { SERVER_NAME } from './material.js';
import { measure } from './proc.js';

export interface Resumption {
  fullPerCore: number;
  resumedPerCore: number;
  /** How many times cheaper a resumed handshake is for the proxy. */
  ratio: number;
  /** Share of the `resume` connections the server actually resumed. */
  resumedShare: number;
}

const CONCURRENCY = 16;
const REQUEST = `GET /s1 HTTP/1.1\r\nHost: ${SERVER_NAME}\r\nConnection: close\r\n\r\n`;

function once(port: number, caPem: string, session: Buffer | undefined): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    let reused = false;
    let handshook = false;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SERVER_NAME, ca: caPem, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
    socket.on('session', (s: Buffer) => (ticket = s));
    socket.once('secureConnect', () => {
      // Asked now: after 'close' the handle is gone and isSessionReused() has no answer.
      reused = socket.isSessionReused();
      handshook = true;
      socket.end(REQUEST);
    });
    socket.on('data', () => undefined);
    // A reset after the handshake (nginx closing a half-closed connection) does not matter here.
    socket.on('error', (err) => {
      if (!handshook) reject(err);
    });
    socket.once('close', () => resolve({ reused, session: ticket }));
  });
}

async function loop(pid: number, port: number, caPem: string, resume: boolean, seconds: number) {
  let connections = 0;
  let reused = 0;
  const { usage } = await measure(pid, async () => {
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        let session: Buffer | undefined;
        while (performance.now() < deadline) {
          const r = await once(port, caPem, resume ? session : undefined);
          connections++;
          if (r.reused) reused++;
          session = r.session ?? session;
        }
      }),
    );
  });
  if (connections === 0) throw new Error('no connection completed');
  return { perCore: connections / Math.max(usage.cpuSeconds, 0.01), reusedShare: reused / connections };
}

export async function measureResumption(pid: number, port: number, caPem: string, seconds: number): Promise<Resumption> {
  const full = await loop(pid, port, caPem, false, seconds);
  const resumed = await loop(pid, port, caPem, true, seconds);
  return { fullPerCore: full.perCore, resumedPerCore: resumed.perCore, ratio: resumed.perCore / full.perCore, resumedShare: resumed.reusedShare };
}
