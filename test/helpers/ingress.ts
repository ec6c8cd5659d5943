// A whole ingress on real sockets for integration tests: the test PKI written to a temp folder, a JWKS
// server, an upstream that demands client certificates and echoes what it got, and the gateway on port
// 0, configured through the real loader. Logs go to an in-memory sink the tests can read.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import { stringify } from 'yaml';
import { startGateway, type Gateway } from '../../gateway/app.js';
import { loadConfigText, type LoadedConfig } from '../../gateway/config/load.js';
import { createLogger, type Logger } from '../../gateway/core/log.js';
import { startEchoServer, type EchoReply, type EchoServer } from '../../gateway/dev/demo-backend.js';
import { testPki } from './pki.js';

export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'portcullis-test';

export interface JwksServer {
  url: string;
  hits: number;
  sign(claims?: JWTPayload, options?: { alg?: 'ES256' | 'RS256'; expiresIn?: string; issuer?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  const es = await generateKeyPair('ES256', { extractable: true });
  const rs = await generateKeyPair('RS256', { extractable: true });
  const keys = [
    { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
    { ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' },
  ];
  const state = { hits: 0 };
  const server = http.createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const privateKeys: Record<string, [typeof es.privateKey, string]> = { ES256: [es.privateKey, 'es-1'], RS256: [rs.privateKey, 'rs-1'] };
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get hits() {
      return state.hits;
    },
    async sign(claims = {}, options = {}) {
      const alg = options.alg ?? 'ES256';
      const [key, kid] = privateKeys[alg]!;
      return new SignJWT({ sub: 'alice', ...claims })
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(options.issuer ?? ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m')
        .sign(key);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface TestIngress {
  port: number;
  caPem: string;
  dir: string;
  trustDomain: string;
  configFile: string;
  loaded: LoadedConfig;
  logger: Logger;
  gateway: Gateway;
  upstream: EchoServer;
  jwks: JwksServer;
  /** Every log line the gateway wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Writes a file into the test's temp folder (atomically: temp file + rename) and returns its path. */
  writeFile(name: string, content: string): string;
  close(): Promise<void>;
}

/** The base config; `customize` edits it (plain objects, as YAML would give) before it is loaded. */
export type Customize = (config: Record<string, any>, ctx: { dir: string; writeFile(name: string, content: string): string }) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Everything of a test ingress but the gateway: files, upstream, JWKS server, and the config written. */
export interface TestIngressFiles {
  pki: ReturnType<typeof testPki>;
  dir: string;
  configFile: string;
  /** The config as written (plain objects, relative paths), for tests that rewrite it. */
  config: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  upstream: EchoServer;
  jwks: JwksServer;
  writeFile(name: string, content: string): string;
}

export async function writeTestIngress(customize?: Customize): Promise<TestIngressFiles> {
  const pki = testPki();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-test-'));
  const writeFile = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(`${file}.tmp`, content, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
    return file;
  };
  const server = pki.issue({ dnsNames: ['localhost', 'api.test', 'secure.test', '*.wild.test', 'a.b.wild.test'], ipAddresses: ['127.0.0.1'] });
  const svid = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/portcullis/sa/gateway` });
  const backend = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/demo/sa/backend`, ipAddresses: ['127.0.0.1'] });
  writeFile('ca.pem', pki.ca.certPem);
  writeFile('server.pem', server.certPem);
  writeFile('server-key.pem', server.keyPem);
  writeFile('svid.pem', svid.certPem);
  writeFile('svid-key.pem', svid.keyPem);

  const upstream = await startEchoServer({ certPem: backend.certPem, keyPem: backend.keyPem, caPem: pki.ca.certPem });
  const jwks = await startJwksServer();
  const config: Record<string, any> = { // eslint-disable-line @typescript-eslint/no-explicit-any
    version: 'v1',
    mesh: { trustDomain: pki.trustDomain, svid: { cert: 'svid.pem', key: 'svid-key.pem' }, bundle: 'ca.pem' },
    listeners: [
      {
        name: 'edge',
        address: '127.0.0.1',
        port: 0,
        hosts: [
          {
            name: 'main',
            hostnames: ['localhost', 'api.test'],
            tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' } },
          },
        ],
      },
    ],
    jwtProviders: [
      {
        name: 'test',
        issuer: ISSUER,
        audiences: [AUDIENCE],
        jwksUri: jwks.url,
        claimsToHeaders: [{ header: 'x-user', claim: 'sub' }],
      },
    ],
    upstreams: [
      { name: 'echo', url: upstream.url, tls: { spiffeId: `spiffe://${pki.trustDomain}/ns/demo/sa/backend` } },
    ],
    routes: [
      { name: 'public', match: { path: { prefix: '/public' } }, upstream: 'echo' },
      { name: 'api', match: { path: { prefix: '/api' } }, upstream: 'echo' },
      { name: 'admin', match: { path: { prefix: '/admin' } }, upstream: 'echo' },
    ],
    policies: [
      { name: 'public', action: 'ALLOW', routes: ['public'], rules: [{}] },
      { name: 'api', action: 'ALLOW', routes: ['api'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
      { name: 'admin-deny', action: 'DENY', routes: ['admin'], rules: [{ when: [{ key: 'request.auth.claims[role]', notValues: ['admin'] }] }] },
      { name: 'admin', action: 'ALLOW', routes: ['admin'], rules: [{}] },
    ],
  };
  customize?.(config, { dir, writeFile });
  const configFile = path.join(dir, 'portcullis.yaml');
  fs.writeFileSync(configFile, stringify(config));
  return { pki, dir, configFile, config, upstream, jwks, writeFile };
}

/** `logLevel`: `warn` keeps a load test's access lines (one per request) out of the in-memory sink. */
export async function startTestIngress(customize?: Customize, options: { logLevel?: 'info' | 'warn' } = {}): Promise<TestIngress> {
  const { pki, dir, configFile, upstream, jwks, writeFile } = await writeTestIngress(customize);
  const loaded = loadConfigText(fs.readFileSync(configFile, 'utf8'), configFile);

  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger(options.logLevel ?? 'info', sink);
  const gateway = await startGateway(loaded.config, { logger });
  return {
    port: gateway.ports.get('edge')!,
    caPem: pki.ca.certPem,
    dir,
    trustDomain: pki.trustDomain,
    configFile,
    loaded,
    logger,
    gateway,
    upstream,
    jwks,
    logs,
    writeFile,
    async close() {
      await gateway.close(2000);
      await Promise.all([upstream.close(), jwks.close()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = EchoReply & { code?: string; error?: string; reason?: string; requestId?: string }>(): T;
}

/** One HTTPS request on a fresh connection (no agent), with SNI and Host chosen separately. */
export function request(
  port: number,
  caPem: string,
  options: { path?: string; method?: string; headers?: http.OutgoingHttpHeaders; body?: string; servername?: string; cert?: string; key?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/public/hello',
        method: options.method ?? 'GET',
        headers: { host: 'localhost', ...options.headers },
        servername: options.servername ?? 'localhost',
        ca: caPem,
        agent: false,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The serial number of the certificate a new TLS connection is served (SNI localhost), leading zeros removed. */
export function servedSerial(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial.replace(/^0+/, ''));
    });
    socket.on('error', reject);
  });
}
