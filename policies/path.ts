// The one canonical normalization of a request path, used for routing, for policy matching and for the
// request we forward: if authorization and the backend could read a path differently, a DENY can be walked
// around (CVE-2021-29492 / CVE-2021-31920). It lives with the policy language because policy paths are
// checked against it at config time, and it is pure.
//
// The default assumes the most lenient backend behind the gateway and refuses every request-target such a
// backend could read as another path, after Istio's normalization table (which rewrites where we refuse):
// Tomcat/Jetty/Spring strip `;parameters` from any segment, Express and a second proxy decode twice, Java
// and .NET decode overlong UTF-8 or fold Unicode (NFKC, best-fit), Windows/IIS trim trailing dots and
// spaces. Three readings can be opted into per route (`PathOptions`), each named in `relaxed` so the route
// stage can refuse a target that needed a reading its route did not opt into. Case is not folded here: it is
// a matching concern (routes and policies), so the forwarded path keeps the client's case.
//
// Written by hand because WHATWG `URL` and `path.posix.normalize` both re-interpret the path (URL turns `\`
// into `/`, keeps `..` above root silently, decodes nothing; path.normalize is not RFC 3986).

export interface PathOptions {
  /**
   * `%2F` / `%5C` in the path. `reject` (default) answers 400: a backend that decodes them would see a
   * different path than the one authorized (CVE-2021-31920). `keep` forwards them, hex upper-cased, as part
   * of a segment; used to check policy values, which may name such segments.
   */
  escapedSlashes?: 'reject' | 'keep';
  /** `;parameters` on a name segment: matched without them (as Tomcat reads them), forwarded with them. */
  allowSemicolonParams?: boolean;
  /** `%25` kept as data: re-opens double decoding (`%252e%252e` is `..` to a backend that decodes twice). */
  allowEncodedPercent?: boolean;
  /** Percent-encoded UTF-8 decoded, NFKC-folded, checked in its folded form and forwarded folded. */
  decodeUtf8?: 'reject' | 'nfkc';
}

/** Readings beyond the strict default that a target needed, as bits of `NormalizedTarget.relaxed`. */
export const RELAXED = Object.freeze({ semicolonParams: 1, encodedPercent: 2, utf8: 4 });

/** The refusal a target gets from a route that has not opted into the reading it needed (same as strict). */
export const RELAXED_REASONS: readonly [bit: number, reason: string][] = Object.freeze([
  [RELAXED.semicolonParams, 'path_parameters'],
  [RELAXED.encodedPercent, 'encoded_percent'],
  [RELAXED.utf8, 'encoded_non_ascii'],
]);

/** The `RELAXED` bits an option set opts into. */
export function relaxationsOf(options: PathOptions): number {
  return (
    (options.allowSemicolonParams ? RELAXED.semicolonParams : 0) |
    (options.allowEncodedPercent ? RELAXED.encodedPercent : 0) |
    (options.decodeUtf8 === 'nfkc' ? RELAXED.utf8 : 0)
  );
}

export interface NormalizedTarget {
  /** Normalized path: matched by routes and policies. */
  path: string;
  /** What is forwarded: `path` with its `;parameters` kept (the same string when there are none). */
  forwardPath: string;
  /** The query with its leading `?` exactly as received ('' when none), forwarded as `forwardPath + query`. */
  query: string;
  /** `RELAXED` bits of the opted-in readings this target needed; 0 for anything the strict default accepts. */
  relaxed: number;
}

export interface RejectedTarget {
  /** A `gateway/core/errors.ts` code (spelled here so the policy language imports nothing from the gateway). */
  error: 'GW_PATH_REJECTED' | 'GW_REQUEST_MALFORMED';
  /** Stable snake_case detail, safe to return to the client. */
  reason: string;
}

export type NormalizeResult = NormalizedTarget | RejectedTarget;

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const HASH = 0x23;
const QUESTION = 0x3f;
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
// A decoded control byte ends a path early in C backends, splits log lines and headers (CRLF), and tab and
// newline are removed anywhere by WHATWG URL parsers: `/ad%09min` is `/admin` to them.
const ENCODED_CONTROL = rejected('GW_PATH_REJECTED', 'encoded_control_character');
// Windows backends and some frameworks read `\` as `/` (Istio's BASE normalization rewrites it): refuse
// rather than guess which one the backend is.
const BACKSLASH_IN_PATH = rejected('GW_PATH_REJECTED', 'backslash');
const ESCAPED_SLASH = rejected('GW_PATH_REJECTED', 'escaped_slash');
// A backend that decodes the path before splitting it (or decodes twice) ends it at `%3F`/`%23`:
// `/admin%3F/x` is `/admin` to it.
const ENCODED_DELIMITER = rejected('GW_PATH_REJECTED', 'encoded_query_or_fragment');
// nginx and Envoy clamp `/..` to `/`; a backend that does not would resolve it elsewhere, so refuse it.
const ABOVE_ROOT = rejected('GW_PATH_REJECTED', 'dot_segment_above_root');
// Tomcat/Jetty strip `;params` before resolving segments, so `/public/..;/admin` is `/admin` to them and
// `/;/admin` is `//admin`, while to us they are neither under `/admin` nor `..` (CVE-2020-1957 class). Refused
// in every mode: no reading of such a segment is safe. `%3B` too: some stacks decode before splitting.
const PARAMETERS_ONLY = rejected('GW_PATH_REJECTED', 'parameters_on_dot_or_empty_segment');
// On any other segment `/admin;x` is `/admin` to Tomcat, Jetty and Spring and `admin;x` to us.
const PATH_PARAMETERS = rejected('GW_PATH_REJECTED', 'path_parameters');
// Spring's StrictHttpFirewall refuses it too: decoded before or after parameter stripping, depending on stack.
const ENCODED_SEMICOLON = rejected('GW_PATH_REJECTED', 'encoded_semicolon');
// `%2561` is `%61` once decoded and `a` twice: a backend (or a second proxy) that decodes again reads a
// path we never saw.
const ENCODED_PERCENT = rejected('GW_PATH_REJECTED', 'encoded_percent');
// Bytes ≥ 0x80 are decoded in whatever charset the backend likes, overlong forms included (`%C0%AE` is `.`
// to lenient UTF-8 decoders), and full-width letters fold to ASCII under NFKC (`%EF%BD%81dmin`).
const NON_ASCII = rejected('GW_PATH_REJECTED', 'encoded_non_ascii');
const INVALID_UTF8 = rejected('GW_PATH_REJECTED', 'invalid_utf8');
const FOLDS_TO_PUNCTUATION = rejected('GW_PATH_REJECTED', 'unicode_folds_to_ascii_punctuation');
const CASE_FOLDS_TO_ASCII = rejected('GW_PATH_REJECTED', 'unicode_case_folds_to_ascii');
// Windows (IIS, Kestrel on Windows, NTFS) drops trailing dots and spaces from a name: `/admin.` and
// `/admin%20` are `/admin` there.
const TRAILING_DOT_OR_SPACE = rejected('GW_PATH_REJECTED', 'segment_ends_with_dot_or_space');

/**
 * Normalizes the raw request-target of an origin-form request (`/a/b?x=1`). Absolute-form and `*` are the
 * caller's to handle and are refused here. Runs on every request: a target with no `%`, no `;`, no `//` and
 * no segment ending in `.` is returned without copying after one scan, in one small object.
 */
export function normalizeRequestTarget(target: string, options: PathOptions = {}): NormalizeResult {
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
    if (c === PERCENT || c === SEMICOLON) slow = true;
    else if (c === SLASH) {
      if (target.charCodeAt(i + 1) === SLASH) slow = true;
    } else if (c === DOT && (i + 1 === pathEnd || target.charCodeAt(i + 1) === SLASH)) slow = true;
  }
  // The query is forwarded untouched and never matched (CVE-2020-8595), but a fragment or control byte
  // in it is still refused: some servers end the path at the first `#` wherever it is.
  for (let i = pathEnd + 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === HASH) return FRAGMENT;
    if (c < 0x20 || c === 0x7f) return c === 0 ? NUL : CONTROL;
  }
  const query = pathEnd === target.length ? '' : target.slice(pathEnd);
  if (!slow) {
    const path = pathEnd === target.length ? target : target.slice(0, pathEnd);
    return { path, forwardPath: path, query, relaxed: 0 };
  }
  return normalizeSlow(target, pathEnd, query, options);
}

/** One segment as it is read: the decoded text, and where its `;parameters` start (-1: none). */
interface SegmentState {
  text: string;
  paramsAt: number;
  encodedSemicolon: boolean;
  relaxed: number;
}

function normalizeSlow(target: string, pathEnd: number, query: string, options: PathOptions): NormalizeResult {
  const names: string[] = [];
  const full: string[] = [];
  const seg: SegmentState = { text: '', paramsAt: -1, encodedSemicolon: false, relaxed: 0 };
  let runStart = 1;
  let endsWithSlash = false;
  for (let i = 1; i <= pathEnd; i++) {
    const c = i === pathEnd ? SLASH : target.charCodeAt(i);
    if (c === SLASH) {
      seg.text += target.slice(runStart, i);
      const refused = endSegment(seg, names, full, options);
      if (refused) return refused;
      // A dot or empty segment never has parameters here (refused), so its text is the bare segment.
      endsWithSlash = seg.text === '' || seg.text === '.' || seg.text === '..';
      seg.text = '';
      seg.paramsAt = -1;
      seg.encodedSemicolon = false;
      runStart = i + 1;
    } else if (c === SEMICOLON) {
      seg.text += target.slice(runStart, i);
      if (seg.paramsAt === -1) seg.paramsAt = seg.text.length;
      seg.text += ';';
      runStart = i + 1;
    } else if (c === PERCENT) {
      seg.text += target.slice(runStart, i);
      const next = decodeEscape(target, i, pathEnd, seg, options);
      if (typeof next !== 'number') return next;
      i = next - 1;
      runStart = next;
    }
  }
  const path = names.length === 0 ? '/' : '/' + names.join('/') + (endsWithSlash ? '/' : '');
  const forwardPath = seg.relaxed & RELAXED.semicolonParams ? (full.length === 0 ? '/' : '/' + full.join('/') + (endsWithSlash ? '/' : '')) : path;
  return { path, forwardPath, query, relaxed: seg.relaxed };
}

/**
 * RFC 3986 §5.2.4 with empty segments merged in the same pass (as nginx does): the result is what we
 * forward, so the backend never resolves anything itself. Returns a refusal, or undefined.
 */
function endSegment(seg: SegmentState, names: string[], full: string[], options: PathOptions): RejectedTarget | undefined {
  const name = seg.paramsAt === -1 ? seg.text : seg.text.slice(0, seg.paramsAt);
  if (seg.paramsAt !== -1) {
    if (name === '' || name === '.' || name === '..') return PARAMETERS_ONLY;
    if (seg.encodedSemicolon) return ENCODED_SEMICOLON;
    if (!options.allowSemicolonParams) return PATH_PARAMETERS;
    seg.relaxed |= RELAXED.semicolonParams;
  }
  if (name === '..') {
    if (names.pop() === undefined) return ABOVE_ROOT;
    full.pop();
  } else if (name !== '' && name !== '.') {
    const last = name.charCodeAt(name.length - 1);
    if (last === DOT || name.endsWith('%20')) return TRAILING_DOT_OR_SPACE;
    names.push(name);
    full.push(seg.text);
  }
  return undefined;
}

/**
 * Reads the escape at `i` (and, for UTF-8, the whole run of escaped bytes ≥ 0x80) into `seg.text`; returns
 * the index after it, or a refusal. Unreserved characters are decoded once (RFC 3986 §6.2.2.2), so `%2e%2e`
 * is resolved as `..` here and not later by the backend; the output is never re-scanned, so no byte is ever
 * decoded twice.
 */
function decodeEscape(target: string, i: number, pathEnd: number, seg: SegmentState, options: PathOptions): number | RejectedTarget {
  const byte = escapedByte(target, i, pathEnd);
  if (byte < 0) return BAD_PERCENT;
  if (byte === 0) return NUL;
  if (byte < 0x20 || byte === 0x7f) return ENCODED_CONTROL;
  if (byte === SLASH || byte === BACKSLASH) {
    if (options.escapedSlashes !== 'keep') return ESCAPED_SLASH;
  } else if (byte === QUESTION || byte === HASH) return ENCODED_DELIMITER;
  else if (byte === PERCENT) {
    if (!options.allowEncodedPercent) return ENCODED_PERCENT;
    seg.relaxed |= RELAXED.encodedPercent;
  } else if (byte === SEMICOLON) {
    if (seg.paramsAt === -1) seg.paramsAt = seg.text.length;
    seg.encodedSemicolon = true;
  } else if (byte >= 0x80) {
    if (options.decodeUtf8 !== 'nfkc') return NON_ASCII;
    seg.relaxed |= RELAXED.utf8;
    return decodeUtf8Run(target, i, pathEnd, seg);
  }
  seg.text += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[byte >> 4] + HEX[byte & 15];
  return i + 3;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * `decodeUtf8: nfkc`: the run of escaped bytes ≥ 0x80 from `i` is decoded strictly (overlong forms, lone
 * surrogates and truncated sequences are refused by the fatal decoder) and folded with NFKC, as .NET, Java
 * normalizers and some routers do. Letters and digits it folds to (`ａ` → `a`) become part of the path we
 * match and forward; anything else it folds to ASCII (`．`, `／`, U+00A0 → space) is refused, as is a
 * character whose case mapping is ASCII (`ı` upper-cases to `I`, so `/admın` is `/ADMIN` to Java's
 * equalsIgnoreCase). What stays non-ASCII is forwarded re-encoded, so the backend gets the folded form.
 */
function decodeUtf8Run(target: string, i: number, pathEnd: number, seg: SegmentState): number | RejectedTarget {
  const bytes: number[] = [];
  let next = i;
  for (let b = escapedByte(target, next, pathEnd); b >= 0x80; b = escapedByte(target, next, pathEnd)) {
    bytes.push(b);
    next += 3;
  }
  let decoded: string;
  try {
    decoded = UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return INVALID_UTF8;
  }
  for (const ch of decoded.normalize('NFKC')) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if (!isAlphaNumeric(cp)) return FOLDS_TO_PUNCTUATION;
      seg.text += ch;
    } else if (isAscii(ch.toUpperCase()) || isAscii(ch.toLowerCase())) {
      return CASE_FOLDS_TO_ASCII;
    } else seg.text += encodeURIComponent(ch);
  }
  return next;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** The byte of the `%XX` escape at `i`, or -1 when it is not one (also past `end`). */
function escapedByte(target: string, i: number, end: number): number {
  if (i + 2 >= end || target.charCodeAt(i) !== PERCENT) return -1;
  const hi = hexValue(target.charCodeAt(i + 1));
  const lo = hexValue(target.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function isAlphaNumeric(c: number): boolean {
  const lower = c | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  return isAlphaNumeric(b) || b === 0x2d || b === DOT || b === 0x5f || b === 0x7e;
}

/** True when `path` is already in the form `normalizeRequestTarget` produces (for config-time checks). */
export function isNormalizedPath(path: string, options?: PathOptions): boolean {
  const result = normalizeRequestTarget(path, options);
  return 'path' in result && result.path === path && result.forwardPath === path;
}
