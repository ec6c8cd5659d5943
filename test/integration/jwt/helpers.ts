// Test helpers for JWT tests: a real JWKS server on 127.0.0.1:0, signing keys generated at run time,
// and an in-memory log sink.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { createLogger, type Logger } from '../../../gateway/core/log.js';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'ES256' | 'EdDSA' | 'PS256' | 'ES384', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

export interface SignOptions {
  /** Seconds since the epoch used for iat and as the base of exp/nbf offsets. */
  now?: number;
  expIn?: number;
  header?: Record<string, unknown>;
}

/** Signs a JWT; `claims` are merged over iss/sub/aud defaults, `iat`/`exp` come from `now` and `expIn`. */
export function sign(key: TestKey, claims: JWTPayload, { now = Math.floor(Date.now() / 1000), expIn = 600, header = {} }: SignOptions = {}): Promise<string> {
  return new SignJWT({ sub: 'alice', iat: now, exp: now + expIn, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

export interface JwksServer {
  url: string;
  /** Requests the server has answered (or refused) so far. */
  readonly hits: number;
  keys: JWK[];
  /** When set, requests are answered with this status and no JWKS. */
  failWith: number | undefined;
  /** Milliseconds each answer is held back. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits += 1;
    setTimeout(() => {
      if (api.failWith !== undefined) res.writeHead(api.failWith).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: api.keys }));
    }, api.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const api: JwksServer = {
    url: `http://127.0.0.1:${port}/jwks.json`,
    keys,
    failWith: undefined,
    delayMs: 0,
    get hits() {
      return hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}

export interface MemoryLog {
  logger: Logger;
  lines: Record<string, unknown>[];
  text(): string;
}

export function memoryLog(): MemoryLog {
  const raw: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void raw.push(line) });
  return {
    logger,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}

/** A manually advanced clock in milliseconds. */
export function frozenClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}
