// What `GET /config` may show of the running configuration. File paths stay (they name where a secret is, not the
// secret); inline secrets go: JWK private members, token/secret/password fields, every value of `tracing.headers`
// (a collector's API key), the value of a `{ name, value }` header whose name carries a credential (route header
// modifiers and matches: `authorization`, `x-api-key`), and credentials and query values in URLs. Pure: returns a redacted copy, never touches the running config.
import { isCredentialHeader, isSecretField, REDACTED, redactUrls } from '../core/secrets.js';

export { REDACTED };

/** RFC 7518 §6.2.2, §6.3.2 and §6.4: the private members of EC/OKP, RSA and symmetric (`oct`) JWKs. */
const JWK_PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);
/** `tracing.headers`, the only field named so. */
const EXPORT_HEADERS = 'headers';

export function redactConfig(value: unknown): unknown {
  return redact(value, undefined);
}

function redact(value: unknown, field: string | undefined): unknown {
  if (typeof value === 'string') {
    if (field !== undefined && isSecretField(field)) return REDACTED;
    // An inline JWKS may be given as JSON text (jwtProviders[].jwks).
    if (field === 'jwks') return redactJwksText(value);
    return redactUrls(value);
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, undefined));
  // Export headers are credentials under any name (`authorization`, `x-honeycomb-team`, `dd-api-key`).
  if (field === EXPORT_HEADERS && typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.keys(value).map((name) => [name, REDACTED]));
  }
  if (typeof value === 'object' && value !== null) {
    const isJwk = 'kty' in value;
    const isCredential = 'name' in value && typeof value.name === 'string' && isCredentialHeader(value.name);
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const secret = (isJwk && JWK_PRIVATE_MEMBERS.has(key)) || (isCredential && key === 'value');
      out[key] = secret ? REDACTED : redact(v, key);
    }
    return out;
  }
  return value;
}

function redactJwksText(text: string): string {
  try {
    return JSON.stringify(redact(JSON.parse(text) as unknown, undefined));
  } catch {
    // Unparsable text can still hold key material; show none of it.
    return REDACTED;
  }
}
