// What a verified token becomes: the policy engine's RequestAuth and the claimsToHeaders output.
import type { JWTPayload } from 'jose';
import type { RequestAuth } from '../../policies/types.js';
import type { JwtProviderConfig } from '../config/schema.js';

export type ClaimHeaders = (payload: Readonly<Record<string, unknown>>) => Readonly<Record<string, string>>;

// Node refuses these characters in header values (ERR_INVALID_CHAR, RFC 9110 §5.5); a claim carrying one
// (CR/LF would be header injection) is left out rather than turning a valid request into a 500.
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** The claim at a dotted path (`a.b.c`), own properties only; undefined when any step is missing. */
export function claimAt(payload: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = payload;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A scalar claim as text (string, finite number, boolean); undefined for objects, arrays and the rest. */
export function scalarClaimText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' ? String(value) : undefined;
}

function claimValue(payload: Readonly<Record<string, unknown>>, path: readonly string[]): string | undefined {
  const value = claimAt(payload, path);
  // Istio/Envoy semantics: string, number and boolean claims only; objects and arrays leave the header absent.
  const text = scalarClaimText(value);
  return text === undefined || INVALID_HEADER_VALUE.test(text) ? undefined : text;
}

export function compileClaimHeaders(mappings: JwtProviderConfig['claimsToHeaders']): ClaimHeaders {
  const compiled = (mappings ?? []).map((m) => ({ header: m.header.toLowerCase(), path: m.claim.split('.') }));
  return (payload) => {
    const out: Record<string, string> = {};
    for (const { header, path } of compiled) {
      const value = claimValue(payload, path);
      if (value !== undefined) out[header] = value;
    }
    return Object.freeze(out);
  };
}

export type ClaimRequirements = (payload: Readonly<Record<string, unknown>>) => 'missing_exp' | 'claim_missing' | 'claim_value_not_allowed' | undefined;

/**
 * The provider's `requireExpiration` and `requiredClaims`, compiled once. A claim with `values` passes when it is one
 * of them (compared as text), or, for an array claim, when one of its elements is; objects never match.
 */
export function compileClaimRequirements(requireExpiration: boolean, required: JwtProviderConfig['requiredClaims']): ClaimRequirements {
  const compiled = (required ?? []).map((r) => ({ path: r.claim.split('.'), values: r.values ? new Set(r.values) : undefined }));
  return (payload) => {
    // RFC 7519 §4.1.4 makes exp optional; without it a token is valid for as long as its key is published.
    if (requireExpiration && payload.exp === undefined) return 'missing_exp';
    for (const { path, values } of compiled) {
      const value = claimAt(payload, path);
      if (value === undefined || value === null) return 'claim_missing';
      if (!values) continue;
      const candidates = Array.isArray(value) ? value : [value];
      if (!candidates.some((v) => isAllowed(scalarClaimText(v), values))) return 'claim_value_not_allowed';
    }
    return undefined;
  };
}

const isAllowed = (text: string | undefined, values: ReadonlySet<string>): boolean => text !== undefined && values.has(text);

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Frozen, because a cached identity is shared by every request that presents the same token. */
export function toRequestAuth(payload: JWTPayload): RequestAuth {
  const issuer = payload.iss ?? '';
  const subject = payload.sub ?? '';
  const aud = payload.aud;
  return deepFreeze({
    issuer,
    subject,
    principal: `${issuer}/${subject}`,
    audiences: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? [...aud] : [],
    claims: payload as Record<string, unknown>,
  });
}
