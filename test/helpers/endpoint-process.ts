// A backend in its own process, for failover tests: killed with SIGKILL (sockets die as a crashed pod's do) and
// started again on the same port. Plain HTTP on 127.0.0.1.
//   /healthz        200
//   /slow?ms=N      answers after N ms (any path takes `ms`)
//   /status?code=N  answers with status N
//   anything else   200 with the process's id as the body
import { spawn, type ChildProcess } from 'node:child_process';

const SERVER = `
const http = require('node:http');
const [id, port] = process.argv.slice(1);
const server = http.createServer((req, res) => {
  const ms = Number(/[?&]ms=(\\d+)/.exec(req.url)?.[1] ?? 0);
  const code = Number(/[?&]code=(\\d+)/.exec(req.url)?.[1] ?? 200);
  setTimeout(() => {
    res.statusCode = code;
    res.end(req.url === '/healthz' ? 'ok' : id);
  }, ms);
});
server.keepAliveTimeout = 30000;
server.listen(Number(port), '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

export interface EndpointProcess {
  readonly id: string;
  /** Fixed by the first start, so a restart comes back where the gateway dials. */
  readonly port: number;
  readonly address: string;
  /** SIGKILL, and waits for the process to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
}

/** `port` 0 (the default) asks the OS for a free one. */
export async function startEndpointProcess(id: string, port = 0): Promise<EndpointProcess> {
  let child: ChildProcess;
  const start = (at: number) =>
    new Promise<number>((resolve, reject) => {
      child = spawn(process.execPath, ['-e', SERVER, id, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`endpoint ${id} exited (${code}) before listening`)));
      child.stdout!.once('data', (line: Buffer) => resolve(Number(/listening (\d+)/.exec(line.toString())?.[1])));
    });
  const bound = await start(port);
  return {
    id,
    port: bound,
    address: `127.0.0.1:${bound}`,
    kill: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
    restart: async () => {
      await start(bound);
    },
  };
}
