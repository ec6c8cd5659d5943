// Everything the peers share, generated fresh into a temp folder per run (keys are never committed):
// the mesh CA, ECDSA P-256 listener certificate, the gateway's SVID, the upstream certificates, the JWT
// signing keys (ES256 and RS256) and the token files the load generator cycles through.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyInput } from 'jose';
import { createCa, issueCertificate } from '../../certs/issue.js';

export const TRUST_DOMAIN = 'bench.test';
export const ISSUER = 'https://issuer.bench.test';
export const AUDIENCE = 'bench';
/** The SNI and Host of every ingress request; the listener certificate names it. */
export const SERVER_NAME = 'localhost';
/** The name S4 clients CONNECT to; each egress proxy maps it to 127.0.0.1 itself. */
export const EGRESS_HOST = 'upstream.bench.test';
export const GATEWAY_SPIFFE_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/gateway`;
export const UPSTREAM_SPIFFE_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/upstream`;
/** Distinct tokens per algorithm, as in the issue; S3-nocache uses more than the gateway's token cache holds. */
export const TOKENS_PER_ALG = 256;
export const NOCACHE_TOKENS = 4096;

export type Alg = 'ES256' | 'RS256';

export interface Pair {
  cert: string;
  key: string;
  /** Certificate followed by its key in one file: HAProxy's `crt` format. */
  combined: string;
}

export interface Material {
  dir: string;
  caPem: string;
  ca: string;
  listener: Pair;
  svid: Pair;
  /** The mTLS upstream's certificate: SPIFFE ID, plus `localhost` and 127.0.0.1 for peers that check names. */
  upstream: Pair;
  /** The S4 HTTPS destination, named EGRESS_HOST. */
  egressTarget: Pair;
  jwt: Record<Alg, { publicPem: string; jwk: JWK; tokens: string }>;
  /** ES256 token file longer than the gateway's verified-token cache: every request is a cache miss. */
  nocacheTokens: string;
  /** One valid token per alg, and the ones every JWT-checking peer must refuse. */
  probes: Record<Alg, { valid: string; badSignature: string; expired: string; wrongAudience: string; wrongIssuer: string }>;
  write(name: string, content: string): string;
  remove(): void;
}

export async function createMaterial(): Promise<Material> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-'));
  fs.chmodSync(dir, 0o755);
  const write = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o644 });
    return file;
  };
  const pair = (name: string, issued: { certPem: string; keyPem: string }): Pair => ({
    cert: write(`${name}.pem`, issued.certPem),
    key: write(`${name}-key.pem`, issued.keyPem),
    combined: write(`${name}-combined.pem`, issued.certPem + issued.keyPem),
  });

  const ca = createCa({ commonName: 'Portcullis Bench CA', trustDomain: TRUST_DOMAIN, keyType: 'ec' });
  const listener = pair('listener', issueCertificate(ca, { dnsNames: [SERVER_NAME], ipAddresses: ['127.0.0.1'], keyType: 'ec' }));
  const svid = pair('svid', issueCertificate(ca, { spiffeId: GATEWAY_SPIFFE_ID, keyType: 'ec' }));
  const upstream = pair(
    'upstream',
    issueCertificate(ca, { spiffeId: UPSTREAM_SPIFFE_ID, dnsNames: [SERVER_NAME], ipAddresses: ['127.0.0.1'], keyType: 'ec' }),
  );
  const egressTarget = pair('egress-target', issueCertificate(ca, { dnsNames: [EGRESS_HOST], keyType: 'ec' }));

  const es = await signingKey('ES256', 'bench-es');
  const rs = await signingKey('RS256', 'bench-rs');
  const now = Math.floor(Date.now() / 1000);
  const mint = (k: typeof es, sub: string, over: { exp?: number; aud?: string; iss?: string; key?: KeyInput } = {}) =>
    new SignJWT({ sub, role: 'bench' })
      .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
      .setIssuer(over.iss ?? ISSUER)
      .setAudience(over.aud ?? AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(over.exp ?? now + 6 * 3600)
      .sign(over.key ?? k.privateKey);
  const mintMany = async (k: typeof es, count: number) => {
    const tokens: string[] = [];
    for (let i = 0; i < count; i++) tokens.push(await mint(k, `user-${i}`));
    return tokens.join('\n') + '\n';
  };
  const probes = async (k: typeof es) => {
    // Same kid and alg, another key: only a signature check can tell it apart.
    const impostor = await generateKeyPair(k.alg);
    return {
      valid: await mint(k, 'probe'),
      badSignature: await mint(k, 'probe', { key: impostor.privateKey }),
      expired: await mint(k, 'probe', { exp: now - 3600 }),
      wrongAudience: await mint(k, 'probe', { aud: 'someone-else' }),
      wrongIssuer: await mint(k, 'probe', { iss: 'https://evil.example' }),
    };
  };

  return {
    dir,
    caPem: ca.certPem,
    ca: write('ca.pem', ca.certPem),
    listener,
    svid,
    upstream,
    egressTarget,
    jwt: {
      ES256: { publicPem: write('jwt-es256.pub.pem', es.publicPem), jwk: es.jwk, tokens: write('tokens-es256.txt', await mintMany(es, TOKENS_PER_ALG)) },
      RS256: { publicPem: write('jwt-rs256.pub.pem', rs.publicPem), jwk: rs.jwk, tokens: write('tokens-rs256.txt', await mintMany(rs, TOKENS_PER_ALG)) },
    },
    nocacheTokens: write('tokens-es256-nocache.txt', await mintMany(es, NOCACHE_TOKENS)),
    probes: { ES256: await probes(es), RS256: await probes(rs) },
    write,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function signingKey(alg: Alg, kid: string) {
  // node:crypto generates the pair so the same key is available as PEM (HAProxy) and as a JWK (Portcullis).
  const { privateKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKey = createPublicKey(privateKey);
  return {
    alg,
    kid,
    privateKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  };
}
