// JWT authentication at the edge (Istio RequestAuthentication semantics on jose).
// No token → anonymous: the policy decides (403), unless the route says `authentication: required` (401 + challenge).
// An invalid token → 401, never anonymous, and a token whose issuer no allowed provider names is invalid
// (CVE-2021-21378). Providers, verifiers and extractors are compiled here once; the request path only reads them.
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import type { RequestAuth } from '../../policies/types.js';
import { DEFAULTS } from '../config/defaults.js';
import type { JwtProviderConfig } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { compileClaimHeaders, compileClaimRequirements, toRequestAuth, type ClaimHeaders, type ClaimRequirements } from './claims.js';
import { createTokenExtractor } from './extract.js';
import {
  ASYMMETRIC_ALGORITHMS,
  JwksUnavailableError,
  createRemoteJwksSource,
  createStaticJwksSource,
  type JwksSource,
  type JwksStatus,
} from './jwks-source.js';
import { createTokenCache } from './token-cache.js';

export interface JwtAuthnDeps {
  logger: Logger;
  now?: () => number;
  fetch?: typeof globalThis.fetch;
  /** Counts each refused token by provider and reason, here where the provider is known. */
  metrics?: Pick<Metrics, 'jwtFailure'>;
  /**
   * The authenticator this one replaces on reload: a remote JWKS whose endpoint and fetch settings did not change
   * is taken over with its cached keys, so a reload during an IdP outage does not throw the last good keys away.
   */
  previous?: JwtAuthn;
}

/** The `provider` label of a token refused before any provider could be told from it. */
export const UNKNOWN_PROVIDER = 'unknown';

export interface AuthnInput {
  headers: IncomingHttpHeaders;
  /** The request's raw header list, so a repeated token header Node folded away is still refused. */
  rawHeaders?: readonly string[];
  query: string;
  allowedProviders?: ReadonlySet<string>;
  /** The route's `authentication: required`: no token is a 401 with a challenge instead of anonymous. */
  required?: boolean;
}

export interface AuthnResult {
  auth?: RequestAuth;
  provider?: string;
  /**
   * The token failed a provider in `mode: dry-run`: the request goes on as if it had none (the token is still
   * stripped), and this is the refusal the provider would have made, for the caller to report.
   */
  wouldDeny?: { provider: string; reason: AuthnFailure };
  removeHeaders: readonly string[];
  removeCookies: readonly string[];
  removeParams: readonly string[];
  /**
   * The verified token's headers under `forwardOriginalToken`: forwarded as the client sent them, also where the
   * name is one the sanitizer strips from clients (`X-Forwarded-Access-Token` is a proxy-asserted name, but this
   * token was verified here).
   */
  keepHeaders?: readonly string[];
  setHeaders: Readonly<Record<string, string>>;
}

/** A token verified by one of the allowed providers. */
export interface VerifiedToken {
  auth: RequestAuth;
  provider: string;
}

export interface JwtAuthn {
  authenticate(input: AuthnInput): Promise<AuthnResult>;
  /**
   * Verifies a token the caller extracted itself (the egress proxy reads `Proxy-Authorization`) with the same
   * providers, key fetchers and cache; throws GW_AUTHN_INVALID_TOKEN like `authenticate`.
   */
  verifyToken(token: string, allowedProviders: ReadonlySet<string>): Promise<VerifiedToken>;
  readonly providerNames: ReadonlySet<string>;
  readonly managedHeaders: readonly string[];
  ready(): Promise<void>;
  status(): Record<string, JwksStatus>;
  /** Remote key sources by what they fetch (endpoint and settings), for the authenticator that replaces this one. */
  readonly remoteSources: ReadonlyMap<string, JwksSource>;
  /** Stops the key sources, except those `successor` took over. */
  close(successor?: JwtAuthn): void;
}

export interface JwtAuthnOptions {
  /** Verified tokens remembered; 0 disables the cache. */
  tokenCacheSize?: number;
}

/** Tokens above this are refused before any decoding: Envoy's jwt_max_token_size idea, sized for RSA-4096 + claims. */
export const MAX_TOKEN_BYTES = 8192;

/** Stable `reason` values of GW_AUTHN_INVALID_TOKEN, each with the RFC 6750 error_description sent to the client. */
const FAILURES = {
  token_malformed: 'malformed token',
  token_prefix_missing: 'token header without the expected prefix',
  token_too_large: 'token too large',
  token_encrypted: 'encrypted tokens (JWE) are not accepted',
  alg_not_allowed: 'signing algorithm not allowed',
  crit_unsupported: 'critical header parameters are not supported',
  issuer_unknown: 'issuer not accepted',
  jwks_unavailable: 'issuer keys unavailable',
  kid_unknown: 'signing key not found',
  signature_invalid: 'signature verification failed',
  token_expired: 'token expired',
  token_not_yet_valid: 'token not yet valid',
  audience_mismatch: 'audience not accepted',
  claims_invalid: 'invalid claims',
  missing_exp: 'token has no expiration time',
  claim_missing: 'a required claim is missing',
  claim_value_not_allowed: 'a required claim has a value that is not accepted',
} as const;
export type AuthnFailure = keyof typeof FAILURES;

// RFC 6750 §3: the challenge names the error so a client can tell "get a new token" from "fix your request".
const bearerChallenge = (error: string, description: string): Record<string, string> => ({
  'www-authenticate': `Bearer realm="portcullis", error="${error}", error_description="${description}"`,
});

/** An invalid token, with the provider it is counted against: a dry-run provider's refusal is let through. */
class TokenRefused extends GatewayError {
  constructor(
    readonly failure: AuthnFailure,
    readonly provider: string,
  ) {
    super('GW_AUTHN_INVALID_TOKEN', failure, bearerChallenge('invalid_token', FAILURES[failure]));
  }
}

// RFC 6750 §3.1: a request that carries no token at all gets a challenge without an error code.
const tokenRequired = (): GatewayError =>
  new GatewayError('GW_AUTHN_REQUIRED', 'token_missing', { 'www-authenticate': 'Bearer realm="portcullis"' });

// RFC 6750 §3.1: more than one method of including a token is an invalid_request.
const multipleTokens = (): GatewayError =>
  new GatewayError('GW_AUTHN_MULTIPLE_TOKENS', 'multiple_tokens', bearerChallenge('invalid_request', 'more than one token in request'));

function failureOf(err: unknown): AuthnFailure {
  if (err instanceof JwksUnavailableError) return 'jwks_unavailable';
  if (err instanceof errors.JWTExpired) return 'token_expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token_not_yet_valid';
    if (err.claim === 'aud') return 'audience_mismatch';
    if (err.claim === 'iss') return 'issuer_unknown';
    return 'claims_invalid';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature_invalid';
  if (err instanceof errors.JWKSNoMatchingKey) return 'kid_unknown';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof errors.JOSEError) return 'token_malformed';
  throw err;
}

interface Provider {
  name: string;
  issuer: string;
  algorithms: ReadonlySet<string>;
  verifyOptions: Omit<JWTVerifyOptions, 'currentDate'>;
  source: JwksSource;
  forward: boolean;
  claimHeaders: ClaimHeaders;
  /** requireExpiration and requiredClaims, checked on the verified payload. */
  claimRequirements: ClaimRequirements;
}

interface Verified {
  provider: Provider;
  auth: RequestAuth;
  setHeaders: Readonly<Record<string, string>>;
}

type SourceDeps = Required<Omit<JwtAuthnDeps, 'metrics' | 'previous'>> & Pick<JwtAuthnDeps, 'previous'>;

/** A key source and, for a remote one, the fingerprint a later reload finds it by. */
function keySource(p: JwtProviderConfig, deps: SourceDeps): { source: JwksSource; remoteKey?: string } {
  if (p.jwksUri === undefined) return { source: staticKeySource(p) };
  const options = {
    provider: p.name,
    uri: p.jwksUri,
    cacheSeconds: p.jwksCacheSeconds ?? DEFAULTS.jwksCacheSeconds,
    cooldownSeconds: p.jwksCooldownSeconds ?? DEFAULTS.jwksCooldownSeconds,
    timeoutMs: p.jwksTimeoutMs ?? DEFAULTS.jwksTimeoutMs,
  };
  const remoteKey = JSON.stringify(options);
  return { source: deps.previous?.remoteSources.get(remoteKey) ?? createRemoteJwksSource(options, deps), remoteKey };
}

/** Inline or file keys: read and checked here, so a bad set fails at config time rather than on every token. */
function staticKeySource(p: JwtProviderConfig): JwksSource {
  const [text, where] = p.jwksFile !== undefined ? [readFileSync(p.jwksFile, 'utf8'), `jwksFile ${p.jwksFile}`] : [p.jwks, 'jwks'];
  let doc: unknown = text;
  if (typeof text === 'string') {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`${where}: not valid JSON: ${(err as Error).message}`);
    }
  }
  return createStaticJwksSource(doc, where, p.algorithms ?? DEFAULTS.jwtAlgorithms);
}

/**
 * Every config-time check `createJwtAuthn` makes on one provider, without starting a JWKS fetch: the config loader
 * runs it so that `validate` refuses what the gateway would. Messages are relative to the provider.
 */
export function checkJwtProvider(p: JwtProviderConfig): void {
  compileProvider(p);
  if (p.jwksUri === undefined) staticKeySource(p);
}

function compileProvider(p: JwtProviderConfig): Omit<Provider, 'source'> {
  const given = (['jwksUri', 'jwks', 'jwksFile'] as const).filter((k) => p[k] !== undefined);
  if (given.length !== 1) throw new Error(`needs exactly one of jwksUri, jwks, jwksFile (${given.length === 0 ? 'none set' : `found ${given.join(', ')}`})`);
  if (p.jwksUri !== undefined && !/^https?:\/\//.test(p.jwksUri)) throw new Error('jwksUri must be an http(s) URL');
  const algorithms = p.algorithms ?? DEFAULTS.jwtAlgorithms;
  const bad = algorithms.filter((a) => !ASYMMETRIC_ALGORITHMS.has(a));
  // The schema already forbids them; checked again because an HMAC or `none` algorithm with a public key is
  // the algorithm-confusion attack (CVE-2015-9235), and config can reach us without the schema (tests, API).
  if (bad.length > 0) throw new Error(`algorithms: not allowed: ${bad.join(', ')}`);
  const clockTolerance = p.clockSkewSeconds ?? DEFAULTS.jwtClockSkewSeconds;
  return {
    name: p.name,
    issuer: p.issuer,
    algorithms: new Set(algorithms),
    verifyOptions: {
      algorithms: [...algorithms],
      issuer: p.issuer,
      clockTolerance,
      // Envoy semantics: an empty audience list means the audience is not checked.
      ...(p.audiences?.length ? { audience: [...p.audiences] } : {}),
    },
    forward: p.forwardOriginalToken ?? false,
    claimHeaders: compileClaimHeaders(p.claimsToHeaders),
    claimRequirements: compileClaimRequirements(p.requireExpiration ?? DEFAULTS.jwtRequireExpiration, p.requiredClaims),
  };
}

/** jose leaves several keys matching a kid-less token to the caller (JWKSMultipleMatchingKeys): try each. */
async function verifyWith(token: string, p: Provider, now: number): Promise<JWTPayload> {
  const options = { ...p.verifyOptions, currentDate: new Date(now) };
  try {
    return (await jwtVerify(token, p.source.getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** The provider a token can only be for (a route or location that one provider reads), else `unknown`. */
function soleProvider(providers: ReadonlySet<string>): string {
  return providers.size === 1 ? providers.values().next().value! : UNKNOWN_PROVIDER;
}

const EMPTY: readonly string[] = Object.freeze([]);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const ANONYMOUS: AuthnResult = Object.freeze({ removeHeaders: EMPTY, removeCookies: EMPTY, removeParams: EMPTY, setHeaders: NO_HEADERS });

export function createJwtAuthn(providers: readonly JwtProviderConfig[], options: JwtAuthnOptions, deps: JwtAuthnDeps): JwtAuthn {
  const full: SourceDeps = {
    logger: deps.logger,
    now: deps.now ?? Date.now,
    fetch: deps.fetch ?? globalThis.fetch,
    ...(deps.previous ? { previous: deps.previous } : {}),
  };
  const cacheSize = options.tokenCacheSize ?? DEFAULTS.jwtTokenCacheSize;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new Error(`tokenCacheSize must be a non-negative integer, got ${cacheSize}`);
  // Provider names are unique: the config loader checks that, with the place of both definitions.
  // Options are checked before any JWKS fetch starts; a bad static JWKS later closes the fetches already started.
  const inProvider = <T>(p: JwtProviderConfig, build: () => T): T => {
    try {
      return build();
    } catch (err) {
      throw new Error(`jwtProviders.${p.name}: ${(err as Error).message}`);
    }
  };
  const compiled = providers.map((config) => ({ config, checked: inProvider(config, () => compileProvider(config)) }));
  const started: Provider[] = [];
  const remoteSources = new Map<string, JwksSource>();
  const adopted = new Set(deps.previous?.remoteSources.values());
  const closeSources = (keep: ReadonlySet<JwksSource>) => {
    for (const p of started) if (!keep.has(p.source)) p.source.close();
  };
  try {
    for (const { config, checked } of compiled) {
      const { source, remoteKey } = inProvider(config, () => keySource(config, full));
      started.push({ ...checked, source });
      if (remoteKey !== undefined) remoteSources.set(remoteKey, source);
    }
  } catch (err) {
    // The sources taken over still belong to the running authenticator.
    closeSources(adopted);
    throw err;
  }

  const byIssuer = new Map<string, Provider[]>();
  for (const p of started) byIssuer.set(p.issuer, [...(byIssuer.get(p.issuer) ?? []), p]);
  const extract = createTokenExtractor(providers);
  const cache = cacheSize > 0 ? createTokenCache<Verified>(cacheSize) : undefined;
  const managedHeaders = Object.freeze(claimHeaderNames(providers));

  const dryRunProviders = new Set(providers.filter((p) => p.mode === 'dry-run').map((p) => p.name));
  /**
   * Counted here, where the provider is known: the one that refused it, or the only one the token could be for.
   * A dry-run provider's refusals are not refusals on ingress: `authenticate` reports them instead.
   */
  function refuse(reason: AuthnFailure, provider: string): TokenRefused {
    if (!dryRunProviders.has(provider)) deps.metrics?.jwtFailure(provider, reason);
    return new TokenRefused(reason, provider);
  }

  async function verifyOrDryRun(token: string, allowed: ReadonlySet<string>): Promise<Verified | TokenRefused> {
    try {
      return await verifyCached(token, allowed);
    } catch (err) {
      if (err instanceof TokenRefused && dryRunProviders.has(err.provider)) return err;
      throw err;
    }
  }

  async function verify(token: string, allowed: ReadonlySet<string>, now: number): Promise<Verified> {
    const only = soleProvider(allowed);
    const segments = token.split('.').length;
    if (segments === 5) throw refuse('token_encrypted', only);
    if (segments !== 3) throw refuse('token_malformed', only);
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      throw refuse('token_malformed', only);
    }
    // Decided before any key lookup, so `none`/HS* tokens never cost a JWKS fetch (RFC 8725 §3.1).
    if (typeof header.alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(header.alg)) throw refuse('alg_not_allowed', only);
    // We understand no JWS extension, so any `crit` must be refused (RFC 7515 §4.1.11).
    if (header.crit !== undefined) throw refuse('crit_unsupported', only);
    // The unverified `iss` only picks the provider; jwtVerify checks it again against the signed payload.
    const candidates = (typeof claims.iss === 'string' ? byIssuer.get(claims.iss) : undefined)?.filter((p) => allowed.has(p.name)) ?? [];
    if (candidates.length === 0) throw refuse('issuer_unknown', only);
    let first: { reason: AuthnFailure; provider: string } | undefined;
    for (const p of candidates) {
      if (!p.algorithms.has(header.alg)) {
        first ??= { reason: 'alg_not_allowed', provider: p.name };
        continue;
      }
      try {
        const payload = await verifyWith(token, p, now);
        const unmet = p.claimRequirements(payload);
        if (unmet) {
          first ??= { reason: unmet, provider: p.name };
          continue;
        }
        return { provider: p, auth: toRequestAuth(payload), setHeaders: p.claimHeaders(payload) };
      } catch (err) {
        first ??= { reason: failureOf(err), provider: p.name };
      }
    }
    throw refuse(first?.reason ?? 'issuer_unknown', first?.provider ?? only);
  }

  async function verifyCached(token: string, allowed: ReadonlySet<string>): Promise<Verified> {
    // Before any parsing: a huge token must cost nothing but this comparison.
    if (token.length > MAX_TOKEN_BYTES) throw refuse('token_too_large', soleProvider(allowed));
    const now = full.now();
    let verified = cache?.get(token, now);
    if (verified === undefined || !allowed.has(verified.provider.name)) {
      verified = await verify(token, allowed, now);
      cache?.set(token, verified, now, typeof verified.auth.claims.exp === 'number' ? verified.auth.claims.exp : undefined);
    }
    return verified;
  }

  return {
    async authenticate({ headers, rawHeaders, query, allowedProviders, required }) {
      const found = extract(headers, query, allowedProviders, rawHeaders);
      if (found.kind === 'none') {
        if (required) throw tokenRequired();
        return ANONYMOUS;
      }
      if (found.kind === 'multiple') {
        deps.metrics?.jwtFailure(UNKNOWN_PROVIDER, 'multiple_tokens');
        throw multipleTokens();
      }
      if (found.kind === 'malformed') throw refuse('token_prefix_missing', UNKNOWN_PROVIDER);
      const verified = await verifyOrDryRun(found.token, found.providers);
      if (verified instanceof TokenRefused) {
        if (required) throw tokenRequired();
        const wouldDeny = { provider: verified.provider, reason: verified.failure };
        return { removeHeaders: found.headers, removeCookies: found.cookies, removeParams: found.params, setHeaders: NO_HEADERS, wouldDeny };
      }
      const strip = !verified.provider.forward;
      return {
        auth: verified.auth,
        provider: verified.provider.name,
        removeHeaders: strip ? found.headers : EMPTY,
        removeCookies: strip ? found.cookies : EMPTY,
        removeParams: strip ? found.params : EMPTY,
        keepHeaders: strip ? EMPTY : found.headers,
        setHeaders: verified.setHeaders,
      };
    },
    async verifyToken(token, allowedProviders) {
      // Egress proxy tokens have no dry-run: a token that does not verify is refused (407) whatever the provider's mode.
      const verified = await verifyOrDryRun(token, allowedProviders);
      if (verified instanceof TokenRefused) {
        deps.metrics?.jwtFailure(verified.provider, verified.failure);
        throw verified;
      }
      return { auth: verified.auth, provider: verified.provider.name };
    },
    providerNames: new Set(providers.map((p) => p.name)),
    managedHeaders,
    ready: () => Promise.all(started.map((p) => p.source.ready())).then(() => undefined),
    status: () => Object.fromEntries(started.map((p) => [p.name, p.source.status()])),
    remoteSources,
    close(successor) {
      closeSources(new Set(successor?.remoteSources.values()));
    },
  };
}

/** The headers the providers' `claimsToHeaders` set (lower case): the gateway's own, never a client's or a route's. */
export function claimHeaderNames(providers: readonly Pick<JwtProviderConfig, 'claimsToHeaders'>[]): string[] {
  return [...new Set(providers.flatMap((p) => (p.claimsToHeaders ?? []).map((m) => m.header.toLowerCase())))];
}
