// SPIFFE IDs (github.com/spiffe/spiffe standards/SPIFFE-ID.md) and their extraction from X.509-SVIDs
// (standards/X509-SVID.md). Pure: no I/O.
import type { X509Certificate } from 'node:crypto';

export interface SpiffeId {
  trustDomain: string;
  /** '' or '/seg/seg…' */
  path: string;
}

const PREFIX = 'spiffe://';
// SPIFFE-ID.md §2.1: "SPIFFE IDs … MUST NOT exceed 2048 bytes"; §2.1 trust domain names at most 255 characters.
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_CHARS = 255;
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Checks a bare trust domain name (`example.org`), returning it unchanged. */
export function parseTrustDomain(name: string): string {
  if (name === '') throw new Error('trust domain is missing');
  if (name.length > MAX_TRUST_DOMAIN_CHARS) {
    throw new Error(`trust domain is longer than ${MAX_TRUST_DOMAIN_CHARS} characters`);
  }
  for (const c of name) {
    if (!TRUST_DOMAIN_CHAR.test(c)) {
      // Ports and userinfo are not part of a trust domain (SPIFFE-ID.md §2.1), so ':' and '@' land here too.
      throw new Error(
        `trust domain characters are limited to lowercase letters, digits, dots, dashes and underscores (found ${JSON.stringify(c)})`,
      );
    }
  }
  return name;
}

/** Parses a SPIFFE ID strictly; throws an Error naming the broken rule. */
export function parseSpiffeId(id: string): SpiffeId {
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) throw new Error(`SPIFFE ID exceeds ${MAX_ID_BYTES} bytes`);
  // The scheme is compared case-sensitively: the spec requires SPIFFE IDs to be written in lowercase, and
  // go-spiffe rejects `SPIFFE://` as well, so two spellings of one identity never reach a policy.
  if (!id.startsWith(PREFIX)) throw new Error('SPIFFE ID must start with "spiffe://"');
  const rest = id.slice(PREFIX.length);
  if (rest.includes('?')) throw new Error('SPIFFE ID must not contain a query');
  if (rest.includes('#')) throw new Error('SPIFFE ID must not contain a fragment');
  const slash = rest.indexOf('/');
  const trustDomain = parseTrustDomain(slash === -1 ? rest : rest.slice(0, slash));
  const path = slash === -1 ? '' : rest.slice(slash);
  if (path !== '') {
    const segments = path.slice(1).split('/');
    segments.forEach((segment, i) => {
      if (segment === '') {
        throw new Error(
          i === segments.length - 1 ? 'SPIFFE ID path must not end with a slash' : 'SPIFFE ID path has an empty segment',
        );
      }
      if (segment === '.' || segment === '..') throw new Error('SPIFFE ID path must not contain "." or ".." segments');
      if (!PATH_SEGMENT.test(segment)) {
        throw new Error('SPIFFE ID path segments are limited to letters, digits, dots, dashes and underscores');
      }
    });
  }
  return { trustDomain, path };
}

/** True when `id` is a valid SPIFFE ID. */
export function isSpiffeId(id: string): boolean {
  try {
    parseSpiffeId(id);
    return true;
  } catch {
    return false;
  }
}

export interface SubjectAltName {
  /** As OpenSSL names it: `DNS`, `URI`, `IP Address`, `email`, `othername`, `DirName`, … */
  type: string;
  value: string;
}

/**
 * Splits Node's `X509Certificate.subjectAltName` string. Node joins entries with ", " and, since the fix for
 * CVE-2021-44532 (Node ≥ 17.3.1 / 16.13.2), prints any value containing a separator, quote, backslash or control
 * character as a JSON string (`URI:"spiffe://td/a, DNS:x"`), so a SAN can no longer pose as two. Returns
 * undefined when the text does not follow that grammar, so a caller fails closed rather than guessing.
 * Node offers no structured SAN accessor; parsing its printed form keeps OpenSSL the only X.509 parser deciding.
 */
export function parseSubjectAltNames(text: string): SubjectAltName[] | undefined {
  const out: SubjectAltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) return undefined;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 2);
      if (end === -1) return undefined;
      end += 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return undefined;
      }
    } else {
      const sep = text.indexOf(', ', colon + 1);
      end = sep === -1 ? text.length : sep;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    if (end === text.length) break;
    if (text.slice(end, end + 2) !== ', ') return undefined;
    i = end + 2;
  }
  return out;
}

function closingQuote(text: string, from: number): number {
  for (let j = from; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  return -1;
}

/**
 * The SPIFFE ID of an X.509-SVID: the certificate's one URI SAN (X509-SVID.md §2 "MUST contain exactly one URI
 * SAN"), which must be a valid SPIFFE ID. Undefined otherwise: no URI SAN, several (CVE-2022-21656 class: never pick
 * one of many), an unparsable SAN list, or any SAN or subject containing NUL (CVE-2025-66220: a NUL-truncated name
 * must not match).
 */
export function spiffeIdFromCertificate(cert: X509Certificate): string | undefined {
  // Node 20 reports an empty subject (usual for SVIDs) as undefined.
  if ((cert.subject ?? '').includes('\0')) return undefined;
  const sans = parseSubjectAltNames(cert.subjectAltName ?? '');
  if (sans === undefined || sans.some((san) => san.value.includes('\0'))) return undefined;
  const uris = sans.filter((san) => san.type === 'URI');
  if (uris.length !== 1) return undefined;
  const id = uris[0]!.value;
  return isSpiffeId(id) ? id : undefined;
}

/** The trust domain a CA certificate vouches for: its one URI SAN `spiffe://<td>` (SPIFFE bundle convention). */
export function trustDomainOfCa(cert: X509Certificate): string | undefined {
  const id = spiffeIdFromCertificate(cert);
  if (id === undefined) return undefined;
  const { trustDomain, path } = parseSpiffeId(id);
  return path === '' ? trustDomain : undefined;
}
