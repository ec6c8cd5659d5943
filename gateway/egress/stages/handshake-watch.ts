// What a CONNECT tunnel's ClientHellos may say, and the watch that keeps checking them after the first one
// (dial.ts `inspectFirstBytes`) while the handshake is still in plaintext.
//
// A server that answers with a HelloRetryRequest gets a second ClientHello (RFC 8446 §4.1.4), as readable as the
// first. RFC 8446 says it names the same server, but nothing makes a client do so, and a server that routes by the
// second one would be fronted. So every ClientHello the client sends is checked before it is forwarded, until the
// server has sent a ServerHello that is not a HelloRetryRequest: from there on a TLS 1.3 handshake is encrypted, and a
// TLS 1.2 server no longer acts on a ClientHello in plaintext. Only then does the tunnel go back to plain piping.
import { MAX_CLIENT_HELLO_BYTES, parseClientHelloBody, type ParsedClientHello } from '../../tls/client-hello.js';

/** Why a ClientHello ends the tunnel: its SNI names another host (or it is malformed), or ECH hides the name. */
export interface HelloRefusal {
  end: 'sni_mismatch' | 'sni_encrypted';
  sni?: string;
  /** The parser's error, for a malformed hello; says so when the hello was not the first. */
  detail?: string;
}

/**
 * The check of one whole ClientHello against the CONNECT host. A hello without SNI passes (the server can only
 * answer with its default certificate). One offering ECH (or ESNI) is refused whatever its outer SNI: that name is
 * the client-facing server's, the destination is in the encrypted inner hello, so the allowlist cannot hold
 * (RFC 9849; HAProxy and Squid document the same limit of SNI filtering). GREASE ECH is refused too: it is
 * made to look like the real thing (RFC 9849 §6.2).
 */
export function checkClientHello(hello: ParsedClientHello, host: string): HelloRefusal | undefined {
  if ('error' in hello) return { end: 'sni_mismatch', detail: hello.error };
  const sni = hello.sni !== undefined ? { sni: hello.sni } : {};
  if (hello.sni !== undefined && hello.sni !== host) return { end: 'sni_mismatch', ...sni };
  if (hello.ech) return { end: 'sni_encrypted', ...sni };
  return undefined;
}

export interface HandshakeWatch {
  /** The client's bytes: those that may go upstream now (none while a ClientHello is incomplete), or the refusal. */
  fromClient(chunk: Buffer): Buffer | HelloRefusal;
  /** The server's bytes, observed before they are written to the client. */
  fromServer(chunk: Buffer): void;
  /** True once neither direction needs looking at: the caller may stop calling. */
  readonly done: boolean;
  /** The refusal `fromClient` returned, for the audit record. */
  readonly refusal: HelloRefusal | undefined;
}

const RECORD_CHANGE_CIPHER_SPEC = 20;
const RECORD_HANDSHAKE = 22;
const RECORD_HEARTBEAT = 24;
const HANDSHAKE_CLIENT_HELLO = 1;
const HANDSHAKE_SERVER_HELLO = 2;
/** TLSCiphertext may exceed 2^14 by the expansion TLS 1.2 allows (RFC 5246 §6.2.3). */
const MAX_RECORD = 16384 + 2048;
/** RFC 8446 §4.1.3: a ServerHello with this `random` is a HelloRetryRequest. */
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
/** The `detail` of a refused ClientHello that was not the first, so the record says the first one passed. */
const LATER_HELLO = 'ClientHello after the first';

/** A record header's type and length, or why it is not one. */
function recordHeader(buf: Buffer, offset: number): { type: number; length: number } | 'not_tls' {
  const type = buf[offset]!;
  const length = buf.readUInt16BE(offset + 3);
  return type < RECORD_CHANGE_CIPHER_SPEC || type > RECORD_HEARTBEAT || length > MAX_RECORD ? 'not_tls' : { type, length };
}

/** Watches a tunnel whose first bytes were a ClientHello for `host`; created when the tunnel is released. */
export function createHandshakeWatch(host: string): HandshakeWatch {
  const client = clientSide(host);
  const server = serverSide();
  let done = false;
  let refusal: HelloRefusal | undefined;
  return {
    fromClient(chunk) {
      if (done) return chunk;
      const out = client.read(chunk);
      if (!Buffer.isBuffer(out)) refusal = out;
      else done = client.done();
      return out;
    },
    fromServer(chunk) {
      if (done) return;
      if (server.read(chunk)) client.answered();
      done = client.done();
    },
    get done() {
      return done;
    },
    get refusal() {
      return refusal;
    },
  };
}

/**
 * The client's records, forwarded whole once read. Handshake messages are reassembled across records; a ClientHello
 * is held back, with the records it spans, until it is complete and checked (nothing of it reaches the server
 * unchecked). Other messages are only skipped over. Once the server has answered, the bytes the client sent before
 * are still read, those after are not: TLS 1.2 sends its encrypted Finished in a handshake record, which must not be
 * read as a message.
 */
function clientSide(host: string) {
  /** Bytes not forwarded yet: read records (held with a ClientHello) and then a record still arriving. */
  let pending: Buffer = Buffer.alloc(0);
  /** How much of `pending` is read. */
  let scanned = 0;
  /** Once the server has answered: how much of `pending` arrived before, and so is still to be read. */
  let mark: number | undefined;
  /** Handshake bytes of a message still incomplete: its header, or a ClientHello. */
  let message: Buffer = Buffer.alloc(0);
  /** Where in `pending` the record holding `message`'s first byte starts. */
  let messageRecord = 0;
  /** Bytes left of a message that is not a ClientHello. */
  let skip = 0;
  let hellos = 0;

  /** Everything sent before the server answered is read, and no ClientHello is held back. */
  const finished = (): boolean => mark !== undefined && scanned >= mark && message.length === 0;

  /** The first `n` pending bytes, to forward. */
  const take = (n: number): Buffer => {
    const out = pending.subarray(0, n);
    pending = pending.subarray(n);
    scanned = Math.max(0, scanned - n);
    messageRecord -= n;
    if (mark !== undefined) mark = Math.max(0, mark - n);
    return out;
  };

  /** Consumes one handshake record's payload starting at `record` in `pending`; a refusal ends the tunnel. */
  const handshake = (payload: Buffer, record: number): HelloRefusal | undefined => {
    const skipped = Math.min(skip, payload.length);
    skip -= skipped;
    if (skipped === payload.length) return undefined;
    if (message.length === 0) messageRecord = record;
    message = Buffer.concat([message, payload.subarray(skipped)]);
    while (message.length >= 4) {
      const type = message[0]!;
      const size = 4 + message.readUIntBE(1, 3);
      if (type !== HANDSHAKE_CLIENT_HELLO) {
        skip = Math.max(0, size - message.length);
        message = message.subarray(Math.min(size, message.length));
      } else if (size > MAX_CLIENT_HELLO_BYTES) {
        return { end: 'sni_mismatch', detail: 'ClientHello too large' };
      } else if (message.length < size) {
        return undefined;
      } else {
        hellos++;
        const refusal = checkClientHello(parseClientHelloBody(message.subarray(4, size)), host);
        if (refusal) return hellos === 1 ? refusal : { ...refusal, detail: [LATER_HELLO, refusal.detail].filter(Boolean).join(': ') };
        message = message.subarray(size);
      }
      // What is left starts a new message, in this record.
      messageRecord = record;
    }
    return undefined;
  };

  return {
    read(chunk: Buffer): Buffer | HelloRefusal {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (!finished() && scanned + 5 <= pending.length) {
        const header = recordHeader(pending, scanned);
        if (header === 'not_tls') return { end: 'sni_mismatch', detail: 'not a TLS record' };
        const end = scanned + 5 + header.length;
        if (end > pending.length) break;
        if (header.type === RECORD_HANDSHAKE) {
          if (header.length === 0) return { end: 'sni_mismatch', detail: 'empty handshake record' };
          const refusal = handshake(pending.subarray(scanned + 5, end), scanned);
          if (refusal) return refusal;
        } else if (message.length > 0 || skip > 0) {
          // RFC 8446 §5.1: a handshake message is never interleaved with other records.
          return { end: 'sni_mismatch', detail: 'records interleaved with a handshake message' };
        }
        scanned = end;
      }
      return take(finished() ? pending.length : message.length > 0 ? messageRecord : scanned);
    },
    /** The server has sent its ServerHello (not a HelloRetryRequest). */
    answered(): void {
      mark ??= pending.length;
    },
    /** Nothing left to read or to hold back: the rest of the stream is passed on unread. */
    done: (): boolean => finished() && pending.length === 0,
  };
}

/** The server's records, read (never held) until its ServerHello shows whether another ClientHello may follow. */
function serverSide() {
  let pending: Buffer = Buffer.alloc(0);
  let message: Buffer = Buffer.alloc(0);
  let skip = 0;
  let answered = false;
  /** Not TLS, or no ServerHello first: nothing more is learned from it, and the client stays watched. */
  let lost = false;

  /** True when the payload finished the look: a ServerHello that is not a HelloRetryRequest, or no TLS. */
  const handshake = (payload: Buffer): boolean => {
    const skipped = Math.min(skip, payload.length);
    skip -= skipped;
    message = Buffer.concat([message, payload.subarray(skipped)]);
    while (message.length >= 4) {
      if (message[0] !== HANDSHAKE_SERVER_HELLO) return (lost = true);
      // legacy_version (2 bytes), then random.
      if (message.length < 4 + 2 + 32) return false;
      if (!message.subarray(6, 38).equals(HRR_RANDOM)) return (answered = true);
      const size = 4 + message.readUIntBE(1, 3);
      skip = Math.max(0, size - message.length);
      message = message.subarray(Math.min(size, message.length));
    }
    return false;
  };

  return {
    /** True once the ServerHello that ends the look has been read. */
    read(chunk: Buffer): boolean {
      if (answered || lost) return answered;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const header = recordHeader(pending, 0);
        if (header === 'not_tls') {
          lost = true;
          break;
        }
        if (pending.length < 5 + header.length) return false;
        const payload = pending.subarray(5, 5 + header.length);
        pending = pending.subarray(5 + header.length);
        if (header.type === RECORD_HANDSHAKE && handshake(payload)) break;
      }
      if (answered || lost) pending = message = Buffer.alloc(0);
      return answered;
    },
  };
}
