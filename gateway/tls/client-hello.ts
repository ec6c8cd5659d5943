// Reads the SNI and ALPN of a TLS ClientHello without decrypting anything (RFC 8446 §4.1.2, RFC 6066 §3,
// RFC 7301). Written by hand because routing must happen before Node's TLS stack owns the socket, and no
// maintained npm library parses a ClientHello from a byte buffer. It only reads: every length is
// bounds-checked, and a hello that spans several records is reassembled up to a fixed limit. Anything a TLS
// server would parse differently (bytes left over at any level, a second name, a name the canonical form would
// rewrite) is an error rather than a guess, since a router acting on a name the server never saw is bypassed.
import { canonicalHost } from '../core/net/host.js';

export type ClientHelloResult =
  | { complete: false }
  /** `ech`: the hello offers Encrypted Client Hello, so `sni` is only the client-facing server's public name. */
  | { complete: true; sni?: string; alpn?: string[]; ech?: true }
  | { error: string };

/** A whole ClientHello, read or refused. */
export type ParsedClientHello = Exclude<ClientHelloResult, { complete: false }>;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
/** RFC 9849 `encrypted_client_hello`; 0xffce is `encrypted_server_name` of the ESNI drafts it replaced. */
const EXT_ECH = 0xfe0d;
const EXT_ESNI = 0xffce;
const NAME_TYPE_HOST = 0x00;
/** A ClientHello with post-quantum key shares is ~2 KB; anything near this limit is abuse. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$/;

/** True when the first byte announces a TLS handshake record (so the stream is TLS, not plaintext). */
export function looksLikeTls(buf: Buffer): boolean {
  return buf.length > 0 && buf[0] === RECORD_HANDSHAKE;
}

/** Parses as much of `buf` as has arrived; `{ complete: false }` asks for more bytes. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  const hello = reassembleHandshake(buf);
  if ('error' in hello || !hello.complete) return hello;
  return parseClientHelloBody(hello.message);
}

/** Parses one whole ClientHello message, without its 4-byte handshake header. */
export function parseClientHelloBody(body: Buffer): ParsedClientHello {
  try {
    return readClientHello(body);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Concatenates the handshake-record payloads until the first handshake message is whole. */
function reassembleHandshake(buf: Buffer): { complete: false } | { complete: true; message: Buffer } | { error: string } {
  const fragments: Buffer[] = [];
  let collected = 0;
  let offset = 0;
  while (offset + 5 <= buf.length) {
    if (buf[offset] !== RECORD_HANDSHAKE) return { error: 'not a TLS handshake record' };
    const length = buf.readUInt16BE(offset + 3);
    if (length === 0 || length > 16384 + 2048) return { error: 'bad TLS record length' };
    if (offset + 5 + length > buf.length) break;
    fragments.push(buf.subarray(offset + 5, offset + 5 + length));
    collected += length;
    offset += 5 + length;
    if (collected >= 4) {
      const head = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { error: 'first handshake message is not a ClientHello' };
      const messageLength = head.readUIntBE(1, 3);
      if (messageLength + 4 > MAX_CLIENT_HELLO_BYTES) return { error: 'ClientHello too large' };
      // A client's first flight of handshake data is the ClientHello alone (RFC 8446 §2); a second ClientHello
      // behind it in the same record would reach the server unchecked.
      if (collected > messageLength + 4) return { error: 'handshake data after the ClientHello' };
      if (collected === messageLength + 4) return { complete: true, message: head.subarray(4) };
    }
  }
  if (buf.length > MAX_CLIENT_HELLO_BYTES + 5 * 4) return { error: 'ClientHello too large' };
  if (buf.length > 0 && buf[0] !== RECORD_HANDSHAKE) return { error: 'not a TLS handshake record' };
  return { complete: false };
}

function readClientHello(body: Buffer): ParsedClientHello {
  const r = new Reader(body);
  r.skip(2 + 32); // legacy_version, random
  r.skip(r.u8()); // legacy_session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // legacy_compression_methods
  if (r.remaining() === 0) return { complete: true }; // no extensions: no SNI
  const extensions = r.sub(r.u16());
  if (r.remaining() !== 0) throw new Error('bytes after the ClientHello extensions');
  let sni: string | undefined;
  let alpn: string[] | undefined;
  let ech = false;
  const seen = new Set<number>();
  while (extensions.remaining() > 0) {
    const type = extensions.u16();
    const data = extensions.sub(extensions.u16());
    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type".
    if (seen.has(type)) throw new Error(`duplicate TLS extension ${type}`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) sni = readServerName(data);
    else if (type === EXT_ALPN) alpn = readAlpn(data);
    else if (type === EXT_ECH || type === EXT_ESNI) ech = true;
  }
  return { complete: true, ...(sni !== undefined ? { sni } : {}), ...(alpn ? { alpn } : {}), ...(ech ? { ech } : {}) };
}

function readServerName(data: Reader): string {
  const list = data.sub(data.u16());
  let name: string | undefined;
  while (list.remaining() > 0) {
    const type = list.u8();
    const value = list.bytes(list.u16());
    if (type !== NAME_TYPE_HOST) continue;
    // RFC 6066 §3: at most one name of each type; a second one is an attempt to confuse a router.
    if (name !== undefined) throw new Error('more than one host_name in SNI');
    name = value.toString('latin1');
  }
  if (data.remaining() !== 0) throw new Error('bytes after the server_name list');
  if (name === undefined) throw new Error('SNI without host_name');
  const lower = name.toLowerCase();
  const canonical = canonicalHost(name)?.host ?? '';
  // Validated because the name reaches logs and routing decisions (CVE-2024-45808: log injection via SNI). The
  // canonical form may only drop case and one trailing dot, as DNS does: IDN mapping or an IPv4 notation would
  // make the name checked here differ from the bytes the server reads (RFC 6066 §3: ASCII, A-labels, no address).
  const exact = canonical === (lower.endsWith('.') ? lower.slice(0, -1) : lower);
  if (!exact || canonical.length > 253 || !HOSTNAME.test(canonical)) throw new Error('SNI is not a valid host name');
  return canonical;
}

function readAlpn(data: Reader): string[] {
  const list = data.sub(data.u16());
  const protocols: string[] = [];
  while (list.remaining() > 0) protocols.push(list.bytes(list.u8()).toString('latin1'));
  return protocols;
}

/** Bounds-checked big-endian cursor; any overrun throws, which the caller turns into `{ error }`. */
class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number): void {
    if (this.offset + n > this.buf.length) throw new Error('truncated ClientHello');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  sub(n: number): Reader {
    return new Reader(this.bytes(n));
  }
}
