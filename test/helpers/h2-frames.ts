// Raw HTTP/2 for tests that must send what node:http2 refuses to: a TLS connection with ALPN h2, the client
// preface, and HEADERS frames whose HPACK block is written by hand (literal fields, never Huffman, never indexed),
// so a header field can carry CR, LF, NUL, a colon, a space or upper case. Hand-written because no client library
// will produce malformed fields; it decodes only what the tests read back: RST_STREAM, GOAWAY and the `:status`
// of a response when the server sent it from the static table (200, 204, 206, 304, 400, 404, 500). `openRawH2`
// keeps a connection open for attacks of many frames (stream errors the server must answer with RST_STREAM,
// CONTINUATION floods).
import tls from 'node:tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** RFC 7541 Appendix A: static-table indexes 8–14 are `:status` with these values. */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 §5.1 integer with an N-bit prefix; `first` carries the representation's pattern bits. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

const hpackString = (text: string): Buffer => {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0x00)), bytes]);
};

/** RFC 7541 §6.2.2 "literal header field without indexing, new name", so nothing enters the dynamic table. */
export function hpackLiteral(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

/** RFC 7541 §6.2.1 "literal header field with incremental indexing, new name": the field enters the dynamic table. */
export function hpackIndexedLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** RFC 7541 §6.1 "indexed header field": `index` 62 is the latest dynamic-table entry, one octet on the wire. */
export function hpackIndexed(index: number): Buffer {
  return Buffer.from(hpackInt(index, 7, 0x80));
}

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * A TLS connection with ALPN h2 that has sent the client preface and SETTINGS, acknowledges the server's SETTINGS,
 * and hands every other frame the server sends to `onFrame`.
 */
function connectH2(port: number, ca: string, onFrame: (f: Frame) => void, connected: () => void): tls.TLSSocket {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['h2'] }, () => {
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
    connected();
  });
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const f = { type: buffered[3]!, flags: buffered[4]!, streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) };
      buffered = buffered.subarray(9 + length);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
      onFrame(f);
    }
  });
  return socket;
}

export interface H2Answer {
  /** RST_STREAM error code for the stream, if the server reset it. */
  rstCode?: number;
  /** `:status`, when the server sent it as a static-table index. */
  status?: number;
  /** The server answered with a HEADERS frame (whatever it held). */
  responded: boolean;
  /** DATA of the stream, as text (not HPACK-encoded, so readable without a decoder). */
  body: string;
  goawayCode?: number;
}

/**
 * Opens a connection, sends one request on stream 1 with exactly `fields` (pseudo-headers included; or an HPACK block
 * as it is) and END_STREAM, and reports how the server answered that stream (or what it said within `waitMs`).
 */
export function sendRawH2Request(port: number, ca: string, fields: readonly (readonly [string, string])[] | Buffer, waitMs = 1500): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const answer: H2Answer = { responded: false, body: '' };
    let done = false;
    const finish = () => {
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(finish, waitMs);
    const onFrame = ({ type, flags, streamId, payload }: Frame) => {
      if (done) return;
      if (type === FRAME.GOAWAY) answer.goawayCode = payload.readUInt32BE(4);
      if (streamId !== 1) return;
      if (type === FRAME.DATA) answer.body += payload.toString('utf8');
      if (type === FRAME.RST_STREAM) answer.rstCode = payload.readUInt32BE(0);
      if (type === FRAME.HEADERS) {
        answer.responded = true;
        const first = payload[0] ?? 0;
        if (first & 0x80) answer.status = STATIC_STATUS[first & 0x7f];
      }
      if (type === FRAME.RST_STREAM || ((type === FRAME.HEADERS || type === FRAME.DATA) && flags & FLAG.END_STREAM)) finish();
    };
    const socket = connectH2(port, ca, onFrame, () =>
      socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, Buffer.isBuffer(fields) ? fields : hpackLiteral(fields))),
    );
    socket.on('error', (err) => (answer.responded || answer.rstCode !== undefined ? finish() : reject(err)));
    socket.on('close', finish);
  });
}

export interface RawH2Connection {
  /** Writes frames as they are; false once the connection has closed. */
  send(...frames: Buffer[]): boolean;
  /** RST_STREAM frames the server sent, by error code. */
  readonly resets: Map<number, number>;
  /** The GOAWAY error code, once the server sent one. */
  readonly goawayCode: number | undefined;
  /** Resolves when the server said GOAWAY or the connection closed, whichever came first. */
  readonly ended: Promise<void>;
  destroy(): void;
}

/** A TLS connection with ALPN h2 after the client preface and SETTINGS, counting what the server resets and says. */
export function openRawH2(port: number, ca: string): Promise<RawH2Connection> {
  return new Promise((resolve, reject) => {
    const resets = new Map<number, number>();
    let goawayCode: number | undefined;
    let open = true;
    let end!: () => void;
    const ended = new Promise<void>((done) => (end = done));
    const onFrame = ({ type, payload }: Frame) => {
      if (type === FRAME.GOAWAY) {
        goawayCode = payload.readUInt32BE(4);
        end();
      }
      if (type === FRAME.RST_STREAM) resets.set(payload.readUInt32BE(0), (resets.get(payload.readUInt32BE(0)) ?? 0) + 1);
    };
    const socket = connectH2(port, ca, onFrame, () =>
      resolve({
        send: (...frames) => open && socket.write(Buffer.concat(frames)),
        resets,
        get goawayCode() {
          return goawayCode;
        },
        ended,
        destroy: () => socket.destroy(),
      }),
    );
    socket.once('close', () => {
      open = false;
      end();
    });
    socket.on('error', (err) => (open ? reject(err) : undefined));
  });
}

/** WINDOW_UPDATE with an increment of 0: a stream error (PROTOCOL_ERROR) the server answers with RST_STREAM (RFC 9113 §6.9). */
export function zeroWindowUpdate(streamId: number): Buffer {
  return frame(FRAME.WINDOW_UPDATE, 0, streamId, Buffer.alloc(4));
}
