// Hand-built TLS handshake bytes for the ClientHello parser and the egress SNI checks: only the fields the parser
// reads, each length written by the caller's data so a test can make any one of them lie.
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

export const EXT = { serverName: 0x0000, alpn: 0x0010, supportedVersions: 0x002b, keyShare: 0x0033, ech: 0xfe0d, esni: 0xffce } as const;
/** RFC 8446 §4.1.3: the `random` of a ServerHello that is a HelloRetryRequest. */
export const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

export const u8 = (n: number): Buffer => Buffer.from([n]);
export const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
export const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
export const vec8 = (data: Buffer): Buffer => Buffer.concat([u8(data.length), data]);
export const vec16 = (data: Buffer): Buffer => Buffer.concat([u16(data.length), data]);

export const extension = (type: number, data: Buffer = Buffer.alloc(0)): Buffer => Buffer.concat([u16(type), vec16(data)]);

/** One ServerNameList entry; names are written byte for byte (latin1), so any byte can be sent. */
export const nameEntry = (name: string | Buffer, type = 0): Buffer => Buffer.concat([u8(type), vec16(typeof name === 'string' ? Buffer.from(name, 'latin1') : name)]);

/** A server_name extension listing `names` as host_name entries. */
export const sni = (...names: (string | Buffer)[]): Buffer => extension(EXT.serverName, vec16(Buffer.concat(names.map((n) => nameEntry(n)))));

/** An encrypted_client_hello extension of the outer hello (RFC 9849 §5): HPKE suite, config id, enc, payload. */
export const ech = (): Buffer =>
  extension(EXT.ech, Buffer.concat([u8(0), u16(0x0001), u16(0x0001), u8(0x2a), vec16(Buffer.alloc(32, 7)), vec16(Buffer.alloc(64, 9))]));

export interface HelloParts {
  sessionId?: Buffer;
  cipherSuites?: Buffer;
  compression?: Buffer;
  /** The whole extensions block, length included; default `vec16` of `extensions`. */
  extensionsBlock?: Buffer;
  extensions?: Buffer[];
}

/** A ClientHello body (no handshake header); `extensions` undefined and no block: a hello without extensions. */
export function clientHelloBody(parts: HelloParts = {}): Buffer {
  const block = parts.extensionsBlock ?? (parts.extensions ? vec16(Buffer.concat(parts.extensions)) : Buffer.alloc(0));
  return Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 1),
    parts.sessionId ?? vec8(Buffer.alloc(32, 2)),
    parts.cipherSuites ?? vec16(Buffer.from([0x13, 0x01, 0x13, 0x02])),
    parts.compression ?? vec8(Buffer.from([0])),
    block,
  ]);
}

export const handshakeMessage = (type: number, body: Buffer): Buffer => Buffer.concat([u8(type), u24(body.length), body]);

/** A whole ClientHello handshake message with these extensions. */
export const clientHello = (...extensions: Buffer[]): Buffer => handshakeMessage(1, clientHelloBody({ extensions }));

export const record = (payload: Buffer, type = 22): Buffer => Buffer.concat([u8(type), u16(0x0301), u16(payload.length), payload]);

/** `payload` as consecutive records of at most `size` bytes each. */
export function records(payload: Buffer, size: number, type = 22): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < payload.length; i += size) out.push(record(payload.subarray(i, i + size), type));
  return Buffer.concat(out);
}

/** The dummy ChangeCipherSpec record of TLS 1.3's middlebox compatibility mode (RFC 8446 §D.4). */
export const changeCipherSpec = (): Buffer => record(Buffer.from([1]), 20);

/** A ServerHello handshake message; with `HRR_RANDOM` as `random`, a HelloRetryRequest asking for secp384r1. */
export function serverHello(random: Buffer): Buffer {
  const extensions = Buffer.concat([extension(EXT.supportedVersions, u16(0x0304)), extension(EXT.keyShare, u16(0x0018))]);
  return handshakeMessage(2, Buffer.concat([u16(0x0303), random, vec8(Buffer.alloc(32, 2)), u16(0x1301), u8(0), vec16(extensions)]));
}

/** The first bytes a real `node:tls` client sends (its ClientHello record), read by a local server that answers nothing. */
export async function captureClientHello(options: ConnectionOptions): Promise<Buffer> {
  let resolveHello: (hello: Buffer) => void = () => undefined;
  const hello = new Promise<Buffer>((resolve) => {
    resolveHello = resolve;
  });
  const server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // One record: done once its declared length has arrived.
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        resolveHello(buf);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({ ...options, host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  client.on('error', () => undefined);
  try {
    return await hello;
  } finally {
    client.destroy();
    server.close();
  }
}
