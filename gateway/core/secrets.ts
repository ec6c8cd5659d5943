// Secrets that travel inside URLs, removed from any text the gateway shows (logs, `/config`, reload answers):
// RFC 3986 §3.2.1 userinfo (`redis://:password@host`, `https://user:token@idp`) and query values
// (`https://idp/jwks?api_key=…`), wherever a URL appears in the text, even inside an error message.
// The URL's scheme, host, path and query names stay: they say where, not what.

export const REDACTED = '[redacted]';

/** Words that make a name hold a secret: the one list `/config` and config error messages both go by. */
const SECRET_WORDS = 'token|secret|password|passphrase|api[-_]?key|credentials?';
/** A config field holding a secret value itself ends in one (`tokenFile`, a path, does not). */
const SECRET_FIELD = new RegExp(`(${SECRET_WORDS})$`, 'i');
/** A header carrying a credential: `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`, `x-auth-token`. */
const CREDENTIAL_HEADER = new RegExp(`${SECRET_WORDS}|auth|cookie`, 'i');

export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADER.test(name);
}

/** `scheme://[userinfo@]rest[?query]`, stopping at whitespace, quotes and brackets (JSON and prose around it). */
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@"'<>]*@)?([^\s?#"'<>]*)(\?[^\s#"'<>]*)?/gi;

export function redactUrls(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_IN_TEXT, (_url, scheme: string, userinfo: string | undefined, rest: string, query: string | undefined) => {
    return `${scheme}${userinfo ? `${REDACTED}@` : ''}${rest}${query ? redactQuery(query) : ''}`;
  });
}

/** `?a=1&b` → `?a=[redacted]&b`: names stay, values go. */
function redactQuery(query: string): string {
  const pairs = query.slice(1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? pair : `${pair.slice(0, eq)}=${REDACTED}`;
  });
  return `?${pairs.join('&')}`;
}
