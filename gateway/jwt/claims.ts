// What a verified token becomes: the policy engine's RequestAuth and the claimsToHeaders output.
import type { JWTPayload } from 'jose';
import type { RequestAuth } from '../../policies/types.js';
import type { JwtProviderConfig } from '../config/schema.js';

export type ClaimHeaders = (payload: Readonly<Record<string, unknown>>) => Readonly<Record<string, string>>;

// Node refuses these characters in header values (ERR_INVALID_CHAR, RFC 9110 §5.5); a claim carrying one
// (CR/LF would be header injection) is left out rather than turning a valid request into a 500.
const INVALID_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

function claimValue(payload: Readonly<Record<string, unknown>>, path: readonly string[]): string | undefined {
  let value: unknown = payload;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  // Istio/Envoy semantics: string, number and boolean claims only; objects and arrays leave the header absent.
  const text =
    typeof value === 'string' ? value : (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' ? String(value) : undefined;
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
