// Secrets that travel inside URLs, removed from any text the gateway shows (logs, `/config`, reload answers):
// RFC 3986 §3.2.1 userinfo (`redis://:password@host`, `https://user:token@idp`) and query values
// (`https://idp/jwks?api_key=…`), wherever a URL appears in the text, even inside an error message.
// The URL's scheme, host, path and query names stay: they say where, not what.

export const REDACTED = '[redacted]';

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
