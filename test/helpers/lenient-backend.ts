// Every way a maximally lenient backend could read a request path it was sent: the union of what Tomcat,
// Jetty, Spring, IIS, Express and naive routers do, composed in any order. Used to check that a path the
// gateway forwarded cannot land on a protected prefix whatever the backend is.
//
// Readings: percent-decoding (as UTF-8 with overlong forms accepted, and as Latin-1), repeated up to
// `decodeRounds` times; `;params` stripped per segment; the path cut at a decoded `?` or `#`; `\` read as
// `/`; tab, CR and LF removed (WHATWG URL); ASCII and Unicode case folding (lower, and upper then lower);
// NFKC; trailing dots, spaces and tabs trimmed per segment (Windows). Dot segments are removed and slashes
// merged after each step (RFC 3986 §5.2.4, clamped at the root as nginx does).

export interface LenientOptions {
  /** How many times a backend may percent-decode (2 or more is "double decoding"). */
  decodeRounds?: number;
}

type Reading = { path: string; decodes: number };

const LIMIT = 5000;

/** Every path the backend might serve for `received` (a request-target; its query is dropped first). */
export function lenientReadings(received: string, options: LenientOptions = {}): Set<string> {
  const rounds = options.decodeRounds ?? 3;
  const start = received.split('?')[0]!;
  const seen = new Map<string, number>();
  const queue: Reading[] = [];
  const add = (path: string, decodes: number) => {
    const resolved = removeDotSegments(path);
    for (const p of new Set([path, resolved])) {
      const known = seen.get(p);
      if (known !== undefined && known <= decodes) continue;
      seen.set(p, decodes);
      queue.push({ path: p, decodes });
    }
  };
  add(start, 0);
  while (queue.length > 0) {
    if (seen.size > LIMIT) throw new Error(`more than ${LIMIT} readings of ${received}`);
    const { path, decodes } = queue.shift()!;
    for (const next of transforms(path)) add(next, decodes);
    if (decodes < rounds && path.includes('%')) {
      for (const decoded of percentDecodings(path)) add(decoded, decodes + 1);
    }
  }
  return new Set(seen.keys());
}

/** True when some reading of `received` is one of `prefixes` or below it (whole segments). */
export function reachesPrefix(received: string, prefixes: readonly string[], options?: LenientOptions): string | undefined {
  for (const reading of lenientReadings(received, options)) {
    for (const prefix of prefixes) {
      if (reading === prefix || reading.startsWith(prefix + '/')) return reading;
    }
  }
  return undefined;
}

function transforms(path: string): string[] {
  const out = [
    path.replace(/;[^/]*/g, ''),
    path.replace(/\\/g, '/'),
    path.replace(/[\t\r\n]/g, ''),
    path.toLowerCase(),
    path.toUpperCase().toLowerCase(),
    path.normalize('NFKC'),
    path.split('/').map((s) => s.replace(/[. \t]+$/, '')).join('/'),
  ];
  const cut = path.search(/[?#]/);
  if (cut !== -1) out.push(path.slice(0, cut));
  return out;
}

function percentDecodings(path: string): string[] {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(path.slice(i + 1, i + 3))) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else bytes.push(...Buffer.from(path[i]!, 'utf8'));
  }
  return [lenientUtf8(bytes), Buffer.from(bytes).toString('latin1')];
}

/** UTF-8 as the laxest decoders read it: overlong forms accepted (`C0 AE` is `.`), invalid bytes as Latin-1. */
function lenientUtf8(bytes: readonly number[]): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const length = b >= 0xf0 && b <= 0xf7 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    const tail = bytes.slice(i + 1, i + length);
    if (length === 1 || tail.length !== length - 1 || tail.some((t) => (t & 0xc0) !== 0x80)) {
      out += String.fromCharCode(b);
      continue;
    }
    let cp = b & (0xff >> (length + 1));
    for (const t of tail) cp = (cp << 6) | (t & 0x3f);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) out += String.fromCharCode(b);
    else {
      out += String.fromCodePoint(cp);
      i += length - 1;
    }
  }
  return out;
}

function removeDotSegments(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '..') segments.pop();
    else if (segment !== '.' && segment !== '') segments.push(segment);
  }
  return '/' + segments.join('/') + (path.endsWith('/') && segments.length > 0 ? '/' : '');
}
