// The ClientHello parser against hostile input: every answer is a parse or a refusal with a reason, never a throw,
// and never "complete, no SNI" for a hello that has not fully arrived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthority } from '../../../gateway/egress/destination.js';
import { parseClientHello, type ClientHelloResult } from '../../../gateway/tls/client-hello.js';
import {
  EXT,
  captureClientHello,
  changeCipherSpec,
  clientHello,
  clientHelloBody,
  ech,
  extension,
  handshakeMessage,
  nameEntry,
  record,
  records,
  sni,
  u16,
  u24,
  vec16,
  vec8,
} from '../../helpers/client-hello.js';

const hello = (...extensions: Buffer[]): Buffer => record(clientHello(...extensions));
const withBody = (body: Buffer): Buffer => record(handshakeMessage(1, body));
const INVALID_SNI = { error: 'SNI is not a valid host name' };
const TRUNCATED = { error: 'truncated ClientHello' };
/** The longest name DNS allows: four labels, 63 + 63 + 63 + 61 characters and three dots. */
const NAME_253 = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');

/** Every strict prefix of `bytes` asks for more, and `bytes` itself gives `expected`. */
function assertEveryPrefixIncomplete(bytes: Buffer, expected: ClientHelloResult): void {
  for (let n = 0; n < bytes.length; n++) assert.deepEqual(parseClientHello(bytes.subarray(0, n)), { complete: false }, `prefix of ${n} bytes`);
  assert.deepEqual(parseClientHello(bytes), expected);
}

test('baseline: a real node:tls ClientHello, whole, in records of every size, and in every prefix', async () => {
  const real = await captureClientHello({ servername: 'Secure.Test', ALPNProtocols: ['h2', 'http/1.1'] });
  const expected = { complete: true, sni: 'secure.test', alpn: ['h2', 'http/1.1'] };
  assertEveryPrefixIncomplete(real, expected);
  const message = real.subarray(5);
  for (const size of [1, 3, 4, 5, 100, 511]) {
    // Split across records, then fed as it would arrive over TCP one write at a time.
    assertEveryPrefixIncomplete(records(message, size), expected);
  }
});

const cases: [name: string, bytes: Buffer, expected: ClientHelloResult][] = [
  // CVE-2024-45808: a name that could forge a log line is refused, and the error does not repeat it.
  ['SNI with CR LF', hello(sni('a.test\r\n{"event":"forged"}')), INVALID_SNI],
  ['SNI with a double quote', hello(sni('a"b.test')), INVALID_SNI],
  ['SNI with NUL', hello(sni('secure.test\0.evil.test')), INVALID_SNI],
  ['SNI with a space', hello(sni('secure.test evil.test')), INVALID_SNI],
  ['zero-length SNI', hello(sni('')), INVALID_SNI],
  ['SNI of 253 characters', hello(sni(NAME_253)), { complete: true, sni: NAME_253 }],
  ['SNI of 254 characters', hello(sni(`${NAME_253}a`)), INVALID_SNI],
  ['two host_name entries in one list', hello(sni('secure.test', 'evil.test')), { error: 'more than one host_name in SNI' }],
  ['server_name extension twice', hello(sni('secure.test'), sni('evil.test')), { error: 'duplicate TLS extension 0' }],
  ['server_name list without host_name', hello(extension(EXT.serverName, vec16(nameEntry('secure.test', 7)))), { error: 'SNI without host_name' }],
  ['empty server_name list', hello(extension(EXT.serverName, vec16(Buffer.alloc(0)))), { error: 'SNI without host_name' }],
  ['an unknown name type beside host_name', hello(extension(EXT.serverName, vec16(Buffer.concat([nameEntry('x', 7), nameEntry('secure.test')])))), { complete: true, sni: 'secure.test' }],
  // A server that read the whole extension as the list would find a second name the router never saw.
  ['bytes after the server_name list', hello(extension(EXT.serverName, Buffer.concat([vec16(nameEntry('secure.test')), nameEntry('evil.test')]))), { error: 'bytes after the server_name list' }],
  ['bytes after the extensions', withBody(Buffer.concat([clientHelloBody({ extensions: [sni('secure.test')] }), sni('evil.test')])), { error: 'bytes after the ClientHello extensions' }],
  // Case and one trailing dot are what DNS ignores: the allowlist canonicalizes the CONNECT host the same way.
  ['SNI in upper case with a trailing dot', hello(sni('SECURE.Test.')), { complete: true, sni: 'secure.test' }],
  ['SNI with two trailing dots', hello(sni('secure.test..')), INVALID_SNI],
  // RFC 6066 §3: ASCII only, IDNs as A-labels. The raw bytes are what the server reads, so no IDN mapping.
  ['IDN SNI as an A-label', hello(sni('xn--bcher-kva.test')), { complete: true, sni: 'xn--bcher-kva.test' }],
  ['IDN SNI in UTF-8', hello(sni(Buffer.from('bücher.test', 'utf8'))), INVALID_SNI],
  ['IDN SNI in Latin-1', hello(sni(Buffer.from('bücher.test', 'latin1'))), INVALID_SNI],
  ['SNI with a soft hyphen the IDN mapping would drop', hello(sni(Buffer.from('sec\u00adure.test', 'latin1'))), INVALID_SNI],
  ['SNI with a fullwidth dot', hello(sni(Buffer.from('secure\u3002test', 'utf8'))), INVALID_SNI],
  ['SNI as an IPv4 notation the URL parser would rewrite', hello(sni('0x7f.1')), INVALID_SNI],
  ['SNI as a decimal IPv4 notation', hello(sni('2130706433')), INVALID_SNI],
  ['ECH offered', hello(sni('allowed.cdn'), ech()), { complete: true, sni: 'allowed.cdn', ech: true }],
  ['ECH offered without SNI', hello(ech()), { complete: true, ech: true }],
  ['ESNI (draft) offered', hello(sni('allowed.cdn'), extension(EXT.esni, Buffer.alloc(40, 3))), { complete: true, sni: 'allowed.cdn', ech: true }],
  ['no extensions at all', withBody(clientHelloBody()), { complete: true }],
  ['a second ClientHello in the same record', record(Buffer.concat([clientHello(sni('secure.test')), clientHello(sni('evil.test'))])), { error: 'handshake data after the ClientHello' }],
  ['a ClientHello and a fragment of another in the same record', record(Buffer.concat([clientHello(sni('secure.test')), Buffer.from([1, 0])])), { error: 'handshake data after the ClientHello' }],
  ['a second ClientHello in a record of its own: the parser answers for the first', Buffer.concat([hello(sni('secure.test')), hello(sni('evil.test'))]), { complete: true, sni: 'secure.test' }],
  ['a ServerHello', record(handshakeMessage(2, Buffer.alloc(40))), { error: 'first handshake message is not a ClientHello' }],
  ['a zero-length record', Buffer.concat([record(Buffer.alloc(0)), hello(sni('secure.test'))]), { error: 'bad TLS record length' }],
  ['a record longer than TLS allows', Buffer.concat([Buffer.from([22, 3, 1]), u16(16384 + 2049)]), { error: 'bad TLS record length' }],
  ['a ChangeCipherSpec between two fragments', Buffer.concat([record(clientHello(sni('secure.test')).subarray(0, 10)), changeCipherSpec()]), { error: 'not a TLS handshake record' }],
  ['a hello longer than the limit', record(Buffer.concat([Buffer.from([1]), u24(0xffffff), Buffer.alloc(16)])), { error: 'ClientHello too large' }],
  // Lengths running past the end, field by field: the record and the handshake message may still arrive, the rest may not.
  ['record length past the end', Buffer.concat([Buffer.from([22, 3, 1]), u16(500), clientHello(sni('secure.test'))]), { complete: false }],
  ['handshake length past the end of its records', record(Buffer.concat([Buffer.from([1]), u24(500), clientHelloBody({ extensions: [sni('secure.test')] })])), { complete: false }],
  ['session id length past the end', withBody(Buffer.concat([u16(0x0303), Buffer.alloc(32), Buffer.from([32]), Buffer.alloc(8)])), TRUNCATED],
  ['cipher suites length past the end', withBody(clientHelloBody({ cipherSuites: Buffer.concat([u16(200), Buffer.alloc(4)]), compression: Buffer.alloc(0) })), TRUNCATED],
  ['compression length past the end', withBody(clientHelloBody({ compression: Buffer.from([5, 0]) })), TRUNCATED],
  ['extensions length past the end', withBody(clientHelloBody({ extensionsBlock: Buffer.concat([u16(300), sni('secure.test')]) })), TRUNCATED],
  ['one extension length past the end', withBody(clientHelloBody({ extensionsBlock: vec16(Buffer.concat([u16(EXT.serverName), u16(60), Buffer.alloc(10)])) })), TRUNCATED],
  ['server_name list length past the end', hello(extension(EXT.serverName, Buffer.concat([u16(40), nameEntry('secure.test')]))), TRUNCATED],
  ['name length past the end', hello(extension(EXT.serverName, vec16(Buffer.concat([Buffer.from([0]), u16(90), Buffer.from('secure.test')])))), TRUNCATED],
  ['ALPN name length past the end', hello(extension(EXT.alpn, vec16(Buffer.concat([vec8(Buffer.from('h2')), Buffer.from([9, 0x68]) ])))), TRUNCATED],
  ['a body too short for the random', withBody(u16(0x0303)), TRUNCATED],
];

for (const [name, bytes, expected] of cases) {
  test(`ClientHello: ${name}`, () => {
    const result = parseClientHello(bytes);
    assert.deepEqual(result, expected);
    if ('error' in result) assert.match(result.error, /^[\x20-\x7e]+$/, 'the error text is safe to log as is');
  });
}

test('an accepted SNI is compared in the form the allowlist gives the CONNECT host', () => {
  const result = parseClientHello(hello(sni('SECURE.Test.')));
  assert.ok('complete' in result && result.complete);
  assert.equal(result.sni, parseAuthority('SECURE.Test.:443').host);
});

test('ClientHello fuzz: mutated and truncated hellos never throw, and every SNI read is a plain host name', async () => {
  const base = [
    await captureClientHello({ servername: 'secure.test', ALPNProtocols: ['h2'] }),
    Buffer.concat([records(clientHello(sni('allowed.cdn'), ech()), 37), changeCipherSpec()]),
  ];
  let seed = 42;
  // A fixed LCG, so a failure reproduces.
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 5_000; i++) {
    const bytes = Buffer.from(base[i % base.length]!);
    for (let flips = 1 + next(4); flips > 0; flips--) bytes[next(bytes.length)] = next(256);
    const input = next(4) === 0 ? bytes.subarray(0, next(bytes.length)) : bytes;
    const result = parseClientHello(input);
    if ('error' in result) continue;
    if (result.complete && result.sni !== undefined) assert.match(result.sni, /^[a-z0-9.-]+$/, `iteration ${i}`);
  }
});
