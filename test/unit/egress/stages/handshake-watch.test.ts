import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkClientHello, createHandshakeWatch, type HandshakeWatch, type HelloRefusal } from '../../../../gateway/egress/stages/handshake-watch.js';
import { HRR_RANDOM, changeCipherSpec, clientHello, ech, handshakeMessage, record, records, serverHello, sni } from '../../../helpers/client-hello.js';

const HOST = 'secure.test';
const hello = (...extensions: Buffer[]): Buffer => record(clientHello(...extensions));
const hrr = (): Buffer => Buffer.concat([record(serverHello(HRR_RANDOM)), changeCipherSpec()]);
const realServerHello = (): Buffer => record(serverHello(Buffer.alloc(32, 0x5a)));
const appData = (bytes: Buffer): Buffer => record(bytes, 23);

/** Feeds `chunks` from the client; the bytes forwarded, or the refusal that ended it. */
function client(watch: HandshakeWatch, ...chunks: Buffer[]): Buffer | HelloRefusal {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const r = watch.fromClient(chunk);
    if (!Buffer.isBuffer(r)) return r;
    out.push(r);
  }
  return Buffer.concat(out);
}

const bytesOf = (b: Buffer): Buffer[] => [...b].map((x) => Buffer.from([x]));

test('checkClientHello: what a CONNECT host admits', () => {
  assert.equal(checkClientHello({ complete: true, sni: HOST }, HOST), undefined);
  assert.equal(checkClientHello({ complete: true }, HOST), undefined, 'no SNI: only the default certificate');
  assert.deepEqual(checkClientHello({ complete: true, sni: 'evil.test' }, HOST), { end: 'sni_mismatch', sni: 'evil.test' });
  assert.deepEqual(checkClientHello({ complete: true, sni: HOST, ech: true }, HOST), { end: 'sni_encrypted', sni: HOST });
  assert.deepEqual(checkClientHello({ complete: true, ech: true }, HOST), { end: 'sni_encrypted' });
  assert.deepEqual(checkClientHello({ complete: true, sni: 'evil.test', ech: true }, HOST), { end: 'sni_mismatch', sni: 'evil.test' });
  assert.deepEqual(checkClientHello({ error: 'truncated ClientHello' }, HOST), { end: 'sni_mismatch', detail: 'truncated ClientHello' });
});

test('an honest HelloRetryRequest handshake passes unchanged, and the watch ends at the real ServerHello', () => {
  const watch = createHandshakeWatch(HOST);
  const first = hello(sni(HOST));
  assert.deepEqual(client(watch, first), first);
  watch.fromServer(hrr());
  assert.equal(watch.done, false, 'a second ClientHello is due');
  const second = Buffer.concat([changeCipherSpec(), hello(sni(HOST))]);
  assert.deepEqual(client(watch, second), second);
  watch.fromServer(realServerHello());
  assert.equal(watch.done, true);
  assert.equal(watch.refusal, undefined);
});

test('after a HelloRetryRequest, a second ClientHello naming another host is refused before any of it is forwarded', () => {
  const watch = createHandshakeWatch(HOST);
  client(watch, hello(sni(HOST)));
  watch.fromServer(hrr());
  const refusal = { end: 'sni_mismatch', sni: 'evil.test', detail: 'ClientHello after the first' };
  assert.deepEqual(client(watch, changeCipherSpec(), ...bytesOf(hello(sni('evil.test')))), refusal);
  assert.deepEqual(watch.refusal, refusal);
});

test('a second ClientHello offering ECH, or malformed, is refused too', () => {
  const encrypted = createHandshakeWatch(HOST);
  client(encrypted, hello(sni(HOST)));
  encrypted.fromServer(hrr());
  assert.deepEqual(client(encrypted, hello(sni(HOST), ech())), { end: 'sni_encrypted', sni: HOST, detail: 'ClientHello after the first' });

  const malformed = createHandshakeWatch(HOST);
  client(malformed, hello(sni(HOST)));
  assert.deepEqual(client(malformed, hello(sni('a.test', 'b.test'))), { end: 'sni_mismatch', detail: 'ClientHello after the first: more than one host_name in SNI' });
});

test('a second ClientHello sent at once, without waiting for the HelloRetryRequest, is checked as well', () => {
  const watch = createHandshakeWatch(HOST);
  const first = hello(sni(HOST));
  assert.deepEqual(client(watch, Buffer.concat([first, changeCipherSpec(), hello(sni('evil.test'))])), { end: 'sni_mismatch', sni: 'evil.test', detail: 'ClientHello after the first' });
});

test('a ClientHello split across records and single-byte writes is held back whole until checked', () => {
  const watch = createHandshakeWatch(HOST);
  client(watch, hello(sni(HOST)));
  watch.fromServer(hrr());
  const split = records(clientHello(sni(HOST)), 7);
  const chunks = bytesOf(split);
  for (const chunk of chunks.slice(0, -1)) assert.equal((watch.fromClient(chunk) as Buffer).length, 0, 'nothing of an unchecked hello goes out');
  assert.deepEqual(watch.fromClient(chunks.at(-1)!), split);
});

test('the first ClientHello may arrive with early data behind it', () => {
  const watch = createHandshakeWatch(HOST);
  const flight = Buffer.concat([hello(sni(HOST)), changeCipherSpec(), appData(Buffer.alloc(100, 1))]);
  assert.deepEqual(client(watch, flight), flight);
});

test('records interleaved with an incomplete ClientHello, or bytes that are no TLS record, end the tunnel', () => {
  const interleaved = createHandshakeWatch(HOST);
  const partial = record(clientHello(sni(HOST)).subarray(0, 20));
  assert.deepEqual(client(interleaved, hello(sni(HOST)), partial, appData(Buffer.alloc(8))), { end: 'sni_mismatch', detail: 'records interleaved with a handshake message' });

  const notTls = createHandshakeWatch(HOST);
  assert.deepEqual(client(notTls, hello(sni(HOST)), Buffer.from('GET / HTTP/1.1\r\n\r\n')), { end: 'sni_mismatch', detail: 'not a TLS record' });

  const empty = createHandshakeWatch(HOST);
  assert.deepEqual(client(empty, hello(sni(HOST)), record(Buffer.alloc(0))), { end: 'sni_mismatch', detail: 'empty handshake record' });

  const huge = createHandshakeWatch(HOST);
  assert.deepEqual(client(huge, hello(sni(HOST)), record(Buffer.from([1, 0xff, 0xff, 0xff]))), { end: 'sni_mismatch', detail: 'ClientHello too large' });
});

test('other handshake messages are skipped over, even across records', () => {
  const watch = createHandshakeWatch(HOST);
  const other = records(handshakeMessage(16, Buffer.alloc(300, 1)), 100);
  const flight = Buffer.concat([hello(sni(HOST)), other]);
  assert.deepEqual(client(watch, flight), flight);
});

test('after a real ServerHello the client is no longer parsed: a TLS 1.2 encrypted Finished may look like anything', () => {
  const watch = createHandshakeWatch(HOST);
  client(watch, hello(sni(HOST)));
  // The ServerHello, split so its random straddles a record boundary, one byte at a time.
  for (const b of bytesOf(records(serverHello(Buffer.alloc(32, 0x5a)), 20))) watch.fromServer(b);
  assert.equal(watch.done, true);
  const finished = record(Buffer.from([1, 0, 0, 40, 0xde, 0xad]));
  assert.deepEqual(client(watch, finished), finished);
});

test('a HelloRetryRequest read one byte at a time is recognised', () => {
  const watch = createHandshakeWatch(HOST);
  client(watch, hello(sni(HOST)));
  for (const b of bytesOf(hrr())) watch.fromServer(b);
  assert.equal(watch.done, false);
  assert.equal((client(watch, hello(sni('evil.test'))) as HelloRefusal).end, 'sni_mismatch');
});

test('a partial ClientHello held when the server answers is still checked when it completes', () => {
  const watch = createHandshakeWatch(HOST);
  const evil = hello(sni('evil.test'));
  client(watch, hello(sni(HOST)), evil.subarray(0, 30));
  watch.fromServer(realServerHello());
  assert.equal(watch.done, false);
  assert.equal((client(watch, evil.subarray(30)) as HelloRefusal).end, 'sni_mismatch');
});

test('a server that answers with no ServerHello teaches nothing: the client stays watched', () => {
  for (const answer of [Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), record(handshakeMessage(11, Buffer.alloc(10)))]) {
    const watch = createHandshakeWatch(HOST);
    client(watch, hello(sni(HOST)));
    watch.fromServer(answer);
    watch.fromServer(realServerHello());
    assert.equal(watch.done, false);
    assert.equal((client(watch, hello(sni('evil.test'))) as HelloRefusal).end, 'sni_mismatch');
  }
});

test('a server alert before its ServerHello changes nothing', () => {
  const watch = createHandshakeWatch(HOST);
  client(watch, hello(sni(HOST)));
  watch.fromServer(record(Buffer.from([1, 0]), 21));
  watch.fromServer(realServerHello());
  assert.equal(watch.done, true);
});
