// The demo backend of the zero-setup mode, also the echo upstream of the integration tests: an HTTPS
// server that demands a client certificate from the mesh CA and answers with what it received, including
// the SPIFFE ID of the caller, so a user can see the gateway's mTLS identity arrive.
import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { spiffeIdFromCertificate } from '../../certs/spiffe-id.js';

export interface EchoServerOptions {
  certPem: string;
  keyPem: string;
  /** CA bundle client certificates must chain to; the server refuses clients without one. */
  caPem: string;
  port?: number;
  host?: string;
}

export interface EchoReply {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** SPIFFE ID of the client certificate the caller presented. */
  peer: string | null;
  /** Serial of that certificate (shows rotation of the caller's SVID). */
  peerSerial: string | null;
  httpVersion: string;
}

export interface EchoServer {
  url: string;
  port: number;
  /** Requests received so far (tests assert that refused requests never arrive). */
  readonly hits: number;
  /** Swaps the server certificate for new handshakes (rotation). */
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

export async function startEchoServer(options: EchoServerOptions): Promise<EchoServer> {
  let hits = 0;
  const server = http2.createSecureServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ca: options.caPem,
      requestCert: true,
      rejectUnauthorized: true,
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
    },
    (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => {
      hits++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const cert = (req.socket as TLSSocket).getPeerCertificate();
        const reply: EchoReply = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          peer: cert?.raw ? (spiffeIdFromCertificate(new X509Certificate(cert.raw)) ?? null) : null,
          peerSerial: cert?.serialNumber ?? null,
          httpVersion: req.httpVersion,
        };
        const body = JSON.stringify(reply, null, 2) + '\n';
        // `?delay=ms` holds the answer back: lets tests (and users) watch draining and timeouts.
        const delay = Math.min(Number(/[?&]delay=(\d+)/.exec(reply.path)?.[1] ?? 0), 60_000);
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json', 'x-demo-backend': 'portcullis' });
          res.end(body);
        }, delay);
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    get hits() {
      return hits;
    },
    setCertificate: (certPem, keyPem) => server.setSecureContext({ cert: certPem, key: keyPem, ca: options.caPem, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
