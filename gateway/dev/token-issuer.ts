// Development token issuer: serves the public half of an ES256 key as a JWKS on loopback and mints tokens with
// the private half, so a local gateway can be exercised end to end without an IdP. Never for production: plain
// HTTP, and whoever can read the key file can mint any identity.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import ipaddr from 'ipaddr.js';
import { SignJWT, importJWK, type JWK } from 'jose';

export const DEV_JWKS_PATH = '/.well-known/jwks.json';
const ALG = 'ES256';

export interface DevTokenIssuerOptions {
  port: number;
  host?: string;
  /** ES256 private JWK (JSON) with a `kid`. */
  signingKeyFile: string;
}

export interface DevTokenIssuer {
  /** The JWKS URL, for a provider's `jwksUri`. */
  url: string;
  /** The issuer (`iss`) to mint tokens with and to configure on the provider. */
  issuer: string;
  close(): Promise<void>;
}

export interface MintOptions {
  issuer: string;
  subject?: string;
  audience?: string | string[];
  ttlSeconds?: number;
  claims?: Record<string, unknown>;
}

async function readSigningKey(file: string): Promise<JWK & { kid: string }> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (err) {
    throw new Error(`dev signing key ${file}: ${(err as Error).message}`);
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string' || typeof jwk.kid !== 'string') {
    throw new Error(`dev signing key ${file}: expected an EC P-256 private JWK with a kid`);
  }
  return jwk as JWK & { kid: string };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback';
}

export async function startDevTokenIssuer({ port, host = '127.0.0.1', signingKeyFile }: DevTokenIssuerOptions): Promise<DevTokenIssuer> {
  // The JWKS decides who may mint identities the gateway trusts; it must not be reachable from the network.
  if (!isLoopback(host)) throw new Error(`dev token issuer: host ${host} is not a loopback address`);
  const { kty, crv, x, y, kid } = await readSigningKey(signingKeyFile);
  // Only the public members, copied by name, so no private field can ever leak into the document.
  const body = JSON.stringify({ keys: [{ kty, crv, x, y, kid, alg: ALG, use: 'sig' }] });

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== DEV_JWKS_PATH) {
      res.writeHead(404).end();
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else {
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=300' })
        .end(req.method === 'GET' ? body : undefined);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url: `${issuer}${DEV_JWKS_PATH}`,
    issuer,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

export async function mintDevToken(
  signingKeyFile: string,
  { issuer, subject = 'dev-user', audience = 'portcullis', ttlSeconds = 3600, claims = {} }: MintOptions,
): Promise<string> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  const jwk = await readSigningKey(signingKeyFile);
  const key = await importJWK(jwk, ALG);
  const now = Math.floor(Date.now() / 1000);
  // Registered claims are set after the custom ones, so `claims` cannot override iss/sub/aud/iat/exp.
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALG, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(subject)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(key);
}
