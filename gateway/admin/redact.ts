// What `GET /config` may show of the running configuration. File paths stay (they name where a secret is, not the
// secret); inline secrets go: JWK private members, token/secret/password fields, and credentials in URLs.
// Pure: returns a redacted copy, never touches the running config.

export const REDACTED = '[redacted]';

/** RFC 7518 §6.2.2, §6.3.2 and §6.4: the private members of EC/OKP, RSA and symmetric (`oct`) JWKs. */
const JWK_PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);
/** Field names that hold a secret value themselves (`tokenFile`, a path, does not match). */
const SECRET_FIELD = /(token|secret|password|passphrase|api[-_]?key|credentials?)$/i;
/** `scheme://userinfo@`: RFC 3986 §3.2.1 userinfo, where URLs carry passwords (`redis://:pw@host`) or tokens. */
const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i;

export function redactConfig(value: unknown): unknown {
  return redact(value, undefined);
}

function redact(value: unknown, field: string | undefined): unknown {
  if (typeof value === 'string') {
    if (field !== undefined && SECRET_FIELD.test(field)) return REDACTED;
    // An inline JWKS may be given as JSON text (jwtProviders[].jwks).
    if (field === 'jwks') return redactJwksText(value);
    return value.replace(URL_USERINFO, `$1${REDACTED}@`);
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, undefined));
  if (typeof value === 'object' && value !== null) {
    const isJwk = 'kty' in value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = isJwk && JWK_PRIVATE_MEMBERS.has(key) ? REDACTED : redact(v, key);
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
