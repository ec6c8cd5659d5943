// Plain-HTTP upstreams that misbehave on request, for the request-lifecycle tests: each path is one
// behaviour, and the server records what reached it and when each request ended, so a test can tell
// whether a cancel, a timeout or a reset travelled through the gateway.
//   /fast            answers at once
//   /slow?ms=N       answers after N ms
//   /hang            never answers
//   /die             starts a chunked answer, then drops the connection
//   /big?bytes=N     streams N bytes (for clients that stop reading)
//   /echo-body       answers with the size of the body it read
// Only the last path segment counts, so the paths work behind any route prefix.
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface RequestRecord {
  path: string;
  started: number;
  /** performance.now() when the upstream saw the request end: answered, or closed under it. */
  ended?: number;
  /** True when the request was closed before its answer ended (the gateway cancelled it). */
  cancelled?: boolean;
}

export interface LifecycleUpstream {
  url: string;
  requests: RequestRecord[];
  /** Requests started and not yet ended. */
  readonly open: number;
  /** Largest number of requests open at once. */
  readonly peakOpen: number;
  close(): Promise<void>;
}

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

export async function startLifecycleUpstream(protocol: 'http1' | 'h2' = 'http1'): Promise<LifecycleUpstream> {
  const requests: RequestRecord[] = [];
  let open = 0;
  let peakOpen = 0;
  const handler = (req: Req, res: Res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const record: RequestRecord = { path: url.pathname.slice(url.pathname.lastIndexOf('/')), started: performance.now() };
    requests.push(record);
    open++;
    peakOpen = Math.max(peakOpen, open);
    res.once('close', () => {
      open--;
      record.ended = performance.now();
      // writableEnded: HTTP/2's compatibility response reports "finished" on a reset too.
      record.cancelled = !res.writableEnded;
    });
    behave(url, req, res);
  };
  const server = protocol === 'h2' ? http2.createServer(handler) : http.createServer({ keepAliveTimeout: 30_000 }, handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s: import('node:net').Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get open() {
      return open;
    },
    get peakOpen() {
      return peakOpen;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function behave(url: URL, req: Req, res: Res): void {
  switch (url.pathname.slice(url.pathname.lastIndexOf('/'))) {
    case '/fast':
      return void res.end('fast');
    case '/slow': {
      const timer = setTimeout(() => res.end('slow'), Number(url.searchParams.get('ms') ?? 1000));
      res.once('close', () => clearTimeout(timer));
      return;
    }
    case '/hang':
      // Headers are flushed for h2 so a gRPC-like stream is open both ways; HTTP/1.1 answers nothing.
      if ('stream' in req) (res as http2.Http2ServerResponse).writeHead(200, { 'content-type': 'application/grpc' }).write('');
      return;
    case '/die': {
      const writable = res as NodeJS.WritableStream;
      res.writeHead(200, { 'content-type': 'text/plain' });
      writable.write('partial answer ');
      setTimeout(() => ('stream' in req ? req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR) : req.socket.destroy()), 50);
      return;
    }
    case '/big': {
      let left = Number(url.searchParams.get('bytes') ?? 1_000_000);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          const writable = res as NodeJS.WritableStream;
          if (!writable.write(piece)) return void writable.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    case '/echo-body': {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => res.end(String(size)));
      return;
    }
    default:
      res.statusCode = 404;
      res.end();
  }
}
