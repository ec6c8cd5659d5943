// One canonical normalization of the request path, used both for policy matching and for the request we
// forward: if authorization and the backend could read a path differently, a DENY can be walked around
// (CVE-2021-29492 / CVE-2021-31920). Follows Istio's normalization (decode slashes policy, RFC 3986 dot
// segments with single decoding of unreserved characters, merged slashes, no case folding: istio#40541)
// and rejects what Istio merely rewrites where a rewrite could still be read two ways.
//
// Refusals are returned as values, not thrown: the caller turns `error` into a GatewayError with `reason`.
// Written by hand because WHATWG `URL` and `path.posix.normalize` both re-interpret the path (URL turns
// `\` into `/`, keeps `..` above root silently, decodes nothing; path.normalize is not RFC 3986).
import type { ErrorCode } from '../../core/errors.js';

export interface NormalizePathOptions {
  /**
   * `%2F` / `%5C` in the path. `reject` (default) answers 400: a backend that decodes them would see a
   * different path than the one authorized (CVE-2021-31920). `keep` forwards them, hex upper-cased, as part
   * of a segment; only for backends that treat them as data (Envoy's KEEP_UNCHANGED).
   */
  escapedSlashes?: 'reject' | 'keep';
}

export interface NormalizedTarget {
  /** Normalized path: matched by routes and policies, and forwarded as is. */
  path: string;
  /** The query with its leading `?` exactly as received ('' when none), so `path + query` is forwarded. */
  query: string;
}

export interface RejectedTarget {
  error: Extract<ErrorCode, 'GW_PATH_REJECTED' | 'GW_REQUEST_MALFORMED'>;
  /** Stable snake_case detail, safe to return to the client. */
  reason: string;
}

export type NormalizeResult = NormalizedTarget | RejectedTarget;

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const HASH = 0x23;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
const HEX = '0123456789ABCDEF';

const rejected = (error: RejectedTarget['error'], reason: string): RejectedTarget => Object.freeze({ error, reason });
const NOT_ORIGIN_FORM = rejected('GW_REQUEST_MALFORMED', 'not_origin_form');
const BAD_PERCENT = rejected('GW_REQUEST_MALFORMED', 'invalid_percent_encoding');
// RFC 9110 §4.2.4: a fragment is never sent; one in the request-target was smuggled past a client or proxy
// and some parsers keep it in the path (CVE-2021-32779, CVE-2023-45539).
const FRAGMENT = rejected('GW_PATH_REJECTED', 'fragment');
const NUL = rejected('GW_PATH_REJECTED', 'nul');
const CONTROL = rejected('GW_PATH_REJECTED', 'invalid_character');
// Windows backends and some frameworks read `\` as `/` (Istio's BASE normalization rewrites it): refuse
// rather than guess which one the backend is.
const BACKSLASH_IN_PATH = rejected('GW_PATH_REJECTED', 'backslash');
const ESCAPED_SLASH = rejected('GW_PATH_REJECTED', 'escaped_slash');
// nginx and Envoy clamp `/..` to `/`; a backend that does not would resolve it elsewhere, so refuse it.
const ABOVE_ROOT = rejected('GW_PATH_REJECTED', 'dot_segment_above_root');
// Tomcat/Jetty strip `;params` before resolving segments, so `/public/..;/admin` is `/admin` to them and
// `/;/admin` is `//admin`, while to us they are neither under `/admin` nor `..` (CVE-2020-1957 class).
// `%3B` too: some stacks decode before splitting parameters (Spring's StrictHttpFirewall refuses both).
const PARAMETERS_ONLY = rejected('GW_PATH_REJECTED', 'parameters_on_dot_or_empty_segment');
const DOT_OR_EMPTY_WITH_PARAMS = /^\.{0,2}(;|%3B)/;

/**
 * Normalizes the raw request-target of an origin-form request (`/a/b?x=1`). Absolute-form and `*` are the
 * caller's to handle and are refused here. Runs on every request: a target with no `%`, no `//` and no
 * segment starting with `.` or `;` is returned without copying after one scan.
 */
export function normalizeRequestTarget(target: string, options: NormalizePathOptions = {}): NormalizeResult {
  if (target.charCodeAt(0) !== SLASH) return NOT_ORIGIN_FORM;
  let pathEnd = target.indexOf('?');
  if (pathEnd === -1) pathEnd = target.length;

  let slow = false;
  for (let i = 0; i < pathEnd; i++) {
    const c = target.charCodeAt(i);
    // RFC 3986 §3.3 allows only visible ASCII in a path; raw bytes above 0x7E would be decoded by each
    // backend in its own charset.
    if (c <= 0x20 || c >= 0x7f) return c === 0 ? NUL : CONTROL;
    if (c === HASH) return FRAGMENT;
    if (c === BACKSLASH) return BACKSLASH_IN_PATH;
    if (c === PERCENT) slow = true;
    else if (c === SLASH) {
      const next = target.charCodeAt(i + 1);
      if (next === SLASH || next === DOT || next === SEMICOLON) slow = true;
    }
  }
  // The query is forwarded untouched and never matched (CVE-2020-8595), but a fragment or control byte
  // in it is still refused: some servers end the path at the first `#` wherever it is.
  for (let i = pathEnd + 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === HASH) return FRAGMENT;
    if (c < 0x20 || c === 0x7f) return c === 0 ? NUL : CONTROL;
  }
  const query = pathEnd === target.length ? '' : target.slice(pathEnd);
  if (!slow) return { path: pathEnd === target.length ? target : target.slice(0, pathEnd), query };
  return normalizeSlow(target, pathEnd, query, options.escapedSlashes ?? 'reject');
}

function normalizeSlow(
  target: string,
  pathEnd: number,
  query: string,
  escapedSlashes: 'reject' | 'keep',
): NormalizeResult {
  const segments: string[] = [];
  let segment = '';
  let runStart = 1;
  let endsWithSlash = false;
  for (let i = 1; i <= pathEnd; i++) {
    const c = i === pathEnd ? SLASH : target.charCodeAt(i);
    if (c === SLASH) {
      segment += target.slice(runStart, i);
      // RFC 3986 §5.2.4 with empty segments merged in the same pass (as nginx does): the result is what
      // we forward, so the backend never resolves anything itself.
      if (segment === '..') {
        if (segments.pop() === undefined) return ABOVE_ROOT;
        endsWithSlash = true;
      } else if (segment === '' || segment === '.') {
        endsWithSlash = true;
      } else if (DOT_OR_EMPTY_WITH_PARAMS.test(segment)) {
        return PARAMETERS_ONLY;
      } else {
        segments.push(segment);
        endsWithSlash = false;
      }
      segment = '';
      runStart = i + 1;
    } else if (c === PERCENT) {
      if (i + 2 >= pathEnd) return BAD_PERCENT;
      const hi = hexValue(target.charCodeAt(i + 1));
      const lo = hexValue(target.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return BAD_PERCENT;
      const byte = hi * 16 + lo;
      segment += target.slice(runStart, i);
      if (byte === 0) return NUL;
      if ((byte === SLASH || byte === BACKSLASH) && escapedSlashes === 'reject') return ESCAPED_SLASH;
      // Decode unreserved characters once (RFC 3986 §6.2.2.2), so `%2e%2e` is resolved as `..` here and
      // not later by the backend; never re-scan the output, so `%252e` stays `%252e` (no double decoding).
      segment += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[hi] + HEX[lo];
      i += 2;
      runStart = i + 1;
    }
  }
  const path = segments.length === 0 ? '/' : '/' + segments.join('/') + (endsWithSlash ? '/' : '');
  return { path, query };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  const lower = b | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === DOT || b === 0x5f || b === 0x7e;
}

/** True when `path` is already in the form `normalizeRequestTarget` produces (for config-time checks). */
export function isNormalizedPath(path: string, options?: NormalizePathOptions): boolean {
  const result = normalizeRequestTarget(path, options);
  return 'path' in result && result.path === path;
}
