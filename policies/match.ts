// Value matchers of the policy language, built once at config load. Each checks its values and reports
// every problem to the caller's list, then returns a plain function the request path only calls: no regex,
// no per-request parsing of policy values.
import { isNormalizedPath, type PathOptions } from './path.js';

export type Matcher<T> = (value: T) => boolean;

/** Collects config problems with their location, e.g. `policies[2].rules[0].to[0].operation.paths[1]`. */
export type Problems = string[];

export const SPIFFE_SCHEME = 'spiffe://';

/**
 * Istio's string match: `*` (present and non-empty), `prefix*`, `*suffix`, or exact. A `*` anywhere else is
 * refused: Istio would read `*a*` as the suffix `a*` with a literal star, which is never what was meant.
 */
export function compileStringMatcher(
  values: readonly string[],
  at: string,
  problems: Problems,
  options: { caseInsensitive?: boolean } = {},
): Matcher<string> {
  const fold = options.caseInsensitive === true;
  return buildStringMatcher(
    values.flatMap((value, i) => {
      const pattern = parseStringPattern(fold ? value.toLowerCase() : value);
      if (typeof pattern === 'string') {
        problems.push(`${at}[${i}]: ${pattern}`);
        return [];
      }
      return [pattern];
    }),
    fold,
  );
}

interface StringPattern {
  kind: 'exact' | 'prefix' | 'suffix' | 'presence';
  text: string;
}

/** The pattern, or the problem with it. */
function parseStringPattern(value: string): StringPattern | string {
  if (value === '*') return { kind: 'presence', text: '' };
  const leading = value.startsWith('*');
  const trailing = value.endsWith('*');
  const text = value.slice(leading ? 1 : 0, trailing ? -1 : undefined);
  if ((leading && trailing) || text.includes('*')) {
    return "'*' is allowed only alone, as a prefix ('*abc') or as a suffix ('abc*')";
  }
  return { kind: leading ? 'suffix' : trailing ? 'prefix' : 'exact', text };
}

function buildStringMatcher(patterns: readonly StringPattern[], fold: boolean): Matcher<string> {
  const exact = new Set(patterns.filter((p) => p.kind === 'exact').map((p) => p.text));
  const prefixes = patterns.filter((p) => p.kind === 'prefix').map((p) => p.text);
  const suffixes = patterns.filter((p) => p.kind === 'suffix').map((p) => p.text);
  const presence = patterns.some((p) => p.kind === 'presence');
  return (input) => {
    if (input === '') return false;
    const v = fold ? input.toLowerCase() : input;
    if (presence || exact.has(v)) return true;
    for (const p of prefixes) if (v.startsWith(p)) return true;
    for (const s of suffixes) if (v.endsWith(s)) return true;
    return false;
  };
}

/** `td/ns/x/sa/y`, accepting the `spiffe://` spelling too (compared without it, as Istio writes them). */
export function compilePrincipalMatcher(values: readonly string[], at: string, problems: Problems): Matcher<string> {
  return compileStringMatcher(values.map(stripSpiffeScheme), at, problems);
}

function stripSpiffeScheme(id: string): string {
  return id.slice(0, SPIFFE_SCHEME.length).toLowerCase() === SPIFFE_SCHEME ? id.slice(SPIFFE_SCHEME.length) : id;
}

/**
 * Hosts compare case-insensitively on both sides (CVE-2021-39155). The request host arrives without port or
 * trailing dot, so a policy host with a port could never match and is refused: ports are matched with
 * `ports` (Istio's `["h", "h:*"]` trap, ISTIO-SECURITY-2021-008).
 */
export function compileHostMatcher(values: readonly string[], at: string, problems: Problems): Matcher<string> {
  values.forEach((value, i) => {
    const bare = value.replace(/^\*|\*$/g, '');
    if (/:[0-9*]*$/.test(bare)) {
      problems.push(`${at}[${i}]: hosts are matched without the port; use 'ports' to match the port`);
    } else if (value.length > 1 && value.endsWith('.')) {
      problems.push(`${at}[${i}]: hosts are matched without a trailing dot`);
    }
  });
  return compileStringMatcher(values, at, problems, { caseInsensitive: true });
}

/** `*` or an exact upper-case method: the listener refuses non-upper-case methods, so others never match. */
export function compileMethodMatcher(values: readonly string[], at: string, problems: Problems): Matcher<string> {
  values.forEach((value, i) => {
    if (value !== '*' && !/^[A-Z][A-Z0-9_-]*$/.test(value)) {
      problems.push(`${at}[${i}]: methods are exact upper-case names (e.g. GET) or '*'`);
    }
  });
  const set = new Set(values);
  return set.has('*') ? () => true : (method) => set.has(method);
}

/**
 * Paths: the string match kinds, plus templates of whole segments: `{*}` is exactly one non-empty segment,
 * `{**}` zero or more and only last (Istio 1.22). A segment matches whatever bytes it holds, `*` included:
 * excluding some characters from a template segment was the CVE-2025-46821 bypass. One trailing slash on
 * the request is ignored by templates so `/users/{*}` also covers `/users/bob/`, which backends serve alike.
 */
export function compilePathMatcher(
  values: readonly string[],
  at: string,
  problems: Problems,
  options: { caseInsensitive?: boolean } = {},
): Matcher<string> {
  const plain: StringPattern[] = [];
  const templates: (readonly Segment[])[] = [];
  values.forEach((value, i) => {
    const where = `${at}[${i}]`;
    if (value.includes('?') || value.includes('#')) {
      // Paths are matched without query or fragment (CVE-2020-8595); such a value would never match.
      problems.push(`${where}: paths never include a query or fragment`);
    } else if (value.includes('{') || value.includes('}')) {
      const template = compileTemplate(value, where, problems);
      if (template) templates.push(template);
    } else if (!value.startsWith('/') && !value.startsWith('*')) {
      problems.push(`${where}: paths start with '/' (or '*' for a suffix match)`);
    } else {
      const pattern = parseStringPattern(value);
      if (typeof pattern === 'string') problems.push(`${where}: ${pattern}`);
      else {
        checkNormalized(value, pattern, where, problems);
        plain.push(pattern);
      }
    }
  });
  // Folded: the caller passes the path lower-cased (`RequestView.foldedPath`).
  if (options.caseInsensitive !== true) return pathMatcher(plain, templates);
  const lower = (s: Segment) => (typeof s === 'string' ? s.toLowerCase() : s);
  return pathMatcher(
    plain.map((p) => ({ ...p, text: p.text.toLowerCase() })),
    templates.map((t) => Object.freeze(t.map(lower))),
  );
}

function pathMatcher(plain: readonly StringPattern[], templates: readonly (readonly Segment[])[]): Matcher<string> {
  const matchPlain = plain.length > 0 ? buildStringMatcher(plain, false) : undefined;
  return (path) => {
    if (matchPlain?.(path)) return true;
    for (const t of templates) if (matchTemplate(t, path)) return true;
    return false;
  };
}

/**
 * A value that normalization would rewrite never equals a normalized request path: refuse it. Prefix and
 * suffix values are probed with a segment character added where the wildcard is, since they may end or
 * start mid-segment (`/.well*` matches `/.well-known`).
 */
function checkNormalized(value: string, pattern: StringPattern, where: string, problems: Problems): void {
  const probe =
    pattern.kind === 'exact' ? pattern.text
    : pattern.kind === 'prefix' ? pattern.text + 'x'
    : pattern.kind === 'suffix' ? '/x' + pattern.text
    : '/';
  if (!isNormalizedPath(probe, POLICY_VALUE_READING)) {
    problems.push(`${where}: '${value}' is not a normalized path (no '//', '.' or '..' segments, no encoded unreserved characters, upper-case %XX) and would never match`);
  }
}

/**
 * Policy values may name what any route's opt-outs let through (`%25`, folded UTF-8) and escaped slashes;
 * never `;parameters`, which are not part of the matched path.
 */
const POLICY_VALUE_READING: PathOptions = Object.freeze({ escapedSlashes: 'keep', allowEncodedPercent: true, decodeUtf8: 'nfkc' });

const ONE = Symbol('{*}');
const MANY = Symbol('{**}');
type Segment = string | typeof ONE | typeof MANY;

function compileTemplate(value: string, where: string, problems: Problems): readonly Segment[] | undefined {
  if (!value.startsWith('/')) {
    problems.push(`${where}: a path template starts with '/'`);
    return undefined;
  }
  const raw = value.slice(1).split('/');
  const segments: Segment[] = [];
  let ok = true;
  raw.forEach((s, i) => {
    if (s === '{*}') segments.push(ONE);
    else if (s === '{**}') {
      if (i !== raw.length - 1) {
        problems.push(`${where}: '{**}' must be the last segment of a path template`);
        ok = false;
      }
      segments.push(MANY);
    } else if (s === '') {
      problems.push(`${where}: a path template has no empty segments (a trailing slash is ignored when matching)`);
      ok = false;
    } else if (/[*{}]/.test(s)) {
      // A star inside a templated path was matched inconsistently by Envoy (envoyproxy/envoy#39168).
      problems.push(`${where}: in a path template '*', '{' and '}' appear only as a whole '{*}' or '{**}' segment`);
      ok = false;
    } else if (!isNormalizedPath('/' + s, POLICY_VALUE_READING)) {
      problems.push(`${where}: segment '${s}' is not normalized and would never match`);
      ok = false;
    } else segments.push(s);
  });
  return ok ? Object.freeze(segments) : undefined;
}

/** Walks the path segment by segment without splitting it (no allocation per request). */
function matchTemplate(segments: readonly Segment[], path: string): boolean {
  let end = path.length;
  if (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
  let pos = 1;
  for (const segment of segments) {
    if (segment === MANY) return true;
    if (pos > end) return false;
    let next = path.indexOf('/', pos);
    if (next === -1 || next > end) next = end;
    if (segment === ONE) {
      if (next === pos) return false;
    } else if (next - pos !== segment.length || !path.startsWith(segment, pos)) return false;
    pos = next + 1;
  }
  return pos > end;
}

/** Integers 1–65535 written as strings (`destination.port` condition values). */
export function compilePortMatcher(values: readonly (string | number)[], at: string, problems: Problems): Matcher<number> {
  const ports = new Set<number>();
  values.forEach((value, i) => {
    const port = typeof value === 'number' ? value : /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`${at}[${i}]: not a port number (1-65535)`);
    else ports.add(port);
  });
  return (port) => ports.has(port);
}
