// WebSocket through a real gateway: the `ws` client, and a `ws` server behind mutual TLS that demands the gateway's
// SVID. Echo both ways; refusals (route without websocket, policy, token, h2c and every other upgrade) before any
// upstream connection; the idle and lifetime limits; extended CONNECT over HTTP/2; a drain that ends open sockets.
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';
import { testPki } from '../../helpers/pki.js';

interface WsUpstream {
  url: string;
  spiffeId: string;
  /** TCP connections the upstream accepted. */
  readonly connections: number;
  /** Headers of each handshake it received, and the client certificate's URI SAN. */
  handshakes: { headers: Record<string, string | string[] | undefined>; peer: string | undefined }[];
  close(): Promise<void>;
}

/** A `ws` server behind HTTPS that requires a client certificate of the test CA: says hello, then echoes. */
async function startWsUpstream(): Promise<WsUpstream> {
  const pki = testPki();
  const spiffeId = `spiffe://${pki.trustDomain}/ns/chat/sa/ws`;
  const cert = pki.issue({ spiffeId, ipAddresses: ['127.0.0.1'] });
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true });
  let connections = 0;
  server.on('secureConnection', () => connections++);
  const handshakes: WsUpstream['handshakes'] = [];
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const peer = (req.socket as tls.TLSSocket).getPeerCertificate().subjectaltname;
    handshakes.push({ headers: req.headers, peer });
    ws.send('hello');
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${String(data)}`, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spiffeId,
    get connections() {
      return connections;
    },
    handshakes,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const withUpstream = (upstream: WsUpstream) => (config: Record<string, any>) => { // eslint-disable-line @typescript-eslint/no-explicit-any
  config.upstreams.push({ name: 'chat', url: upstream.url, tls: { spiffeId: upstream.spiffeId } });
  const route = (name: string, extra: object) => ({ name, match: { path: { prefix: `/${name}` } }, upstream: 'chat', ...extra });
  config.routes.unshift(
    route('ws', { websocket: true }),
    route('ws-idle', { websocket: { idleTimeoutMs: 300 } }),
    route('ws-short', { websocket: { maxDurationMs: 600 } }),
    route('ws-token', { websocket: true, authentication: 'required' }),
    route('ws-denied', { websocket: true }),
    route('plain', {}),
    { name: 'ws-split', match: { path: { prefix: '/ws-split' } }, backendRefs: [{ name: 'chat', weight: 1 }, { name: 'echo', weight: 0 }], websocket: true },
    // The test ingress's echo backend: plain HTTP, it answers an upgrade request 200 without switching.
    { name: 'ws-noswitch', match: { path: { prefix: '/ws-noswitch' } }, upstream: 'echo', websocket: true },
  );
  config.policies.push({ name: 'ws', action: 'ALLOW', routes: ['ws', 'ws-idle', 'ws-short', 'plain', 'ws-noswitch', 'ws-split'], rules: [{}] });
  config.policies.push({ name: 'ws-token', action: 'ALLOW', routes: ['ws-token'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] });
};

/** Opens a WebSocket through the gateway; resolves once open, or with the HTTP status it was refused with. */
function connect(gw: TestIngress, path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; messages: string[] } | { refused: number; body: string }> {
  return new Promise((resolve, reject) => {
    // ws passes TLS options on to tls.connect (its types do not list servername).
    const options: WebSocket.ClientOptions & { servername: string } = { ca: gw.caPem, servername: 'localhost', headers: { host: 'localhost', ...headers } };
    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}${path}`, options);
    const messages: string[] = [];
    ws.on('message', (data, isBinary) => messages.push(isBinary ? `binary:${(data as Buffer).toString('hex')}` : String(data)));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ refused: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

/** Writes raw bytes over TLS and returns everything the gateway answered until it closed. */
function raw(gw: TestIngress, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.caPem, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => socket.write(request));
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

describe('WebSocket through the gateway', () => {
  let upstream: WsUpstream;
  let gw: TestIngress;

  before(async () => {
    upstream = await startWsUpstream();
    gw = await startTestIngress(withUpstream(upstream));
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('echoes text and binary messages both ways, over mutual TLS with the gateway\'s SVID; the token becomes claims', async () => {
    const token = await gw.jwks.sign({ sub: 'ws-user' });
    const opened = await connect(gw, '/ws/chat?room=1', { authorization: `Bearer ${token}` });
    assert.ok('ws' in opened);
    const { ws, messages } = opened;
    ws.send('ping');
    ws.send(Buffer.from([1, 2, 3]));
    await until('three messages', () => (messages.length >= 3 ? true : undefined), 10_000);
    assert.deepEqual(messages, ['hello', 'echo:ping', 'binary:010203']);
    const seen = upstream.handshakes.at(-1)!;
    assert.equal(seen.headers['x-user'], 'ws-user');
    assert.equal(seen.headers.authorization, undefined);
    assert.match(String(seen.peer), new RegExp(`URI:spiffe://${gw.trustDomain}/ns/portcullis/sa/gateway`));
    ws.close(1000, 'done');
    assert.equal(await closed(ws), 1000);
    const line = await until('the access line', () => gw.logs.find((l) => l.route === 'ws' && l.status === 101));
    assert.ok((line.bytesIn as number) > 0 && (line.bytesOut as number) > 0);
  });

  it('a route with backendRefs carries a WebSocket to the backend it picks', async () => {
    const opened = await connect(gw, '/ws-split/chat');
    assert.ok('ws' in opened);
    opened.ws.send('split');
    await until('the echo', () => (opened.messages.includes('echo:split') ? true : undefined), 10_000);
    opened.ws.close();
    await closed(opened.ws);
  });

  it('a route without websocket refuses the upgrade (400) before any upstream connection', async () => {
    const before = upstream.connections;
    const refused = await connect(gw, '/plain/chat');
    assert.ok('refused' in refused);
    assert.equal(refused.refused, 400);
    assert.equal(JSON.parse(refused.body).reason, 'websocket_not_allowed');
    assert.equal(upstream.connections, before);
  });

  it('a policy denial refuses the upgrade (403); the upstream sees nothing', async () => {
    const before = upstream.connections;
    const refused = await connect(gw, '/ws-denied/chat');
    assert.ok('refused' in refused);
    assert.equal(refused.refused, 403);
    assert.equal(upstream.connections, before);
  });

  it('an invalid token refuses the upgrade (401); the upstream sees nothing', async () => {
    const before = upstream.connections;
    const refused = await connect(gw, '/ws-token/chat', { authorization: 'Bearer not-a-jwt' });
    assert.ok('refused' in refused);
    assert.equal(refused.refused, 401);
    assert.equal(upstream.connections, before);
  });

  it('Upgrade: h2c is refused 400 and the connection closed, on a WebSocket route too; so is any other protocol', async () => {
    const before = upstream.connections;
    for (const path of ['/ws/x', '/plain/x']) {
      const answer = await raw(
        gw,
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /"reason":"upgrade_refused"/);
    }
    const other = await raw(gw, 'GET /ws/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: foo/1, websocket\r\n\r\n');
    assert.match(other, /^HTTP\/1\.1 400 /);
    assert.equal(upstream.connections, before);
  });

  it('an Upgrade header on an ordinary request (no Connection: upgrade) is refused 400', async () => {
    const answer = await raw(gw, 'GET /plain/x HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /"reason":"upgrade_refused"/);
  });

  it('an upstream that answers without switching: its answer is relayed, and bytes sent after the handshake never reach it (CVE-2025-64763)', async () => {
    const hits = gw.upstream.hits;
    const answer = await raw(
      gw,
      'GET /ws-noswitch/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /ws-noswitch/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /connection: close/i);
    assert.doesNotMatch(answer, /smuggled/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(gw.upstream.hits - hits, 1, 'the handshake alone reached the upstream');
  });

  it('a handshake without a valid key, or with a body, is refused 400', async () => {
    const noKey = await raw(gw, 'GET /ws/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.match(noKey, /^HTTP\/1\.1 400 .*[\s\S]*"reason":"websocket_handshake"/);
    const withBody = await raw(
      gw,
      'GET /ws/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 5\r\n\r\nhello',
    );
    assert.match(withBody, /"reason":"upgrade_with_body"/);
  });

  it('HTTP/2 extended CONNECT (WebSocket over h2) is not offered, and a CONNECT stream is refused 405 unforwarded', async () => {
    const session = http2.connect(`https://127.0.0.1:${gw.port}`, { ca: gw.caPem, servername: 'localhost' });
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      assert.notEqual(settings.enableConnectProtocol, true);
      const stream = session.request({ ':method': 'CONNECT', ':authority': 'localhost' });
      const outcome = await new Promise<string>((resolve) => {
        stream.once('response', (h) => resolve(`status ${String(h[':status'])}`));
        stream.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
        stream.once('close', () => resolve(`closed ${stream.rstCode}`));
      });
      // Node's HTTP/2 layer answers CONNECT itself when no 'connect' handler is set: the pipeline never sees it.
      assert.equal(outcome, 'status 405');
      assert.equal(gw.logs.filter((l) => l.method === 'CONNECT').length, 0);
    } finally {
      session.close();
    }
  });

  it('a WebSocket silent for idleTimeoutMs is closed; the access line says why', async () => {
    const opened = await connect(gw, '/ws-idle/chat');
    assert.ok('ws' in opened);
    const started = performance.now();
    const code = await closed(opened.ws);
    assert.equal(code, 1006, 'cut, not a Close frame: the gateway reads no frames');
    assert.ok(performance.now() - started >= 250);
    const line = await until('the access line', () => gw.logs.find((l) => l.route === 'ws-idle' && l.status === 101));
    assert.equal(line.reason, 'websocket_idle');
  });

  it('a busy WebSocket is closed at maxDurationMs', async () => {
    const opened = await connect(gw, '/ws-short/chat');
    assert.ok('ws' in opened);
    const busy = setInterval(() => opened.ws.send('tick'), 50);
    const started = performance.now();
    await closed(opened.ws);
    clearInterval(busy);
    assert.ok(performance.now() - started >= 400);
    assert.ok(opened.messages.filter((m) => m === 'echo:tick').length >= 3);
    const line = await until('the access line', () => gw.logs.find((l) => l.route === 'ws-short' && l.status === 101));
    assert.equal(line.reason, 'websocket_max_duration');
  });
});

describe('WebSocket and a shutdown drain', () => {
  it('an open WebSocket keeps the drain waiting, and is cut at its end', async () => {
    const upstream = await startWsUpstream();
    const gw = await startTestIngress(withUpstream(upstream));
    try {
      const opened = await connect(gw, '/ws/chat');
      assert.ok('ws' in opened);
      await until('hello', () => (opened.messages.includes('hello') ? true : undefined), 10_000);
      const started = performance.now();
      const wsClosed = closed(opened.ws);
      await gw.gateway.close(500);
      await wsClosed;
      assert.ok(performance.now() - started >= 400, 'the drain waited for the WebSocket');
    } finally {
      await Promise.all([gw.upstream.close(), gw.jwks.close(), upstream.close()]);
    }
  });
});
