// The Node baseline: node:https in front of an undici Pool, and a node:http CONNECT proxy with a one-host
// allowlist. What any Node proxy can reach at best; Portcullis is compared with it. Started as its own
// process by node-undici.ts with its settings in BENCH_NODE_PROXY (JSON).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Pool } from 'undici';

const cfg = JSON.parse(process.env.BENCH_NODE_PROXY ?? '{}') as {
  cert: string;
  key: string;
  ingressPort: number;
  egressPort: number;
  upstreamPort: number;
  egressHost: string;
  egressTargetPort: number;
};
const pool = new Pool(`http://127.0.0.1:${cfg.upstreamPort}`, { connections: 64, pipelining: 1 });

const ingress = https.createServer({ cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key), minVersion: 'TLSv1.3' }, (req, res) => {
  if (req.url !== '/s1') {
    res.writeHead(404).end();
    return;
  }
  pool.request({ method: 'GET', path: req.url, headers: { host: req.headers.host ?? '' } }).then(
    ({ statusCode, headers, body }) => {
      res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
      body.pipe(res);
    },
    () => res.writeHead(502).end(),
  );
});

const egress = http.createServer((_req, res) => res.writeHead(405).end());
egress.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
  if (req.url !== `${cfg.egressHost}:${cfg.egressTargetPort}`) {
    client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const upstream = net.connect(cfg.egressTargetPort, '127.0.0.1', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
});

ingress.listen(cfg.ingressPort, '127.0.0.1');
egress.listen(cfg.egressPort, '127.0.0.1');
// Nothing to drain: the bench stops peers between runs, never during one.
process.once('SIGTERM', () => process.exit(0));
