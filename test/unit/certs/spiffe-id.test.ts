import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, parseSubjectAltNames, parseTrustDomain } from '../../../certs/spiffe-id.js';

describe('parseSpiffeId', () => {
  const valid: [string, string, string][] = [
    ['spiffe://example.org', 'example.org', ''],
    ['spiffe://example.org/ns/default/sa/web', 'example.org', '/ns/default/sa/web'],
    ['spiffe://a-b_c.9/Path.With-Mixed_Case', 'a-b_c.9', '/Path.With-Mixed_Case'],
    ['spiffe://td/...', 'td', '/...'],
    [`spiffe://td/${'a'.repeat(2048 - 'spiffe://td/'.length)}`, 'td', `/${'a'.repeat(2048 - 'spiffe://td/'.length)}`],
  ];
  for (const [id, trustDomain, path] of valid) {
    test(`accepts ${id.slice(0, 60)}`, () => assert.deepEqual(parseSpiffeId(id), { trustDomain, path }));
  }

  const invalid: [string, RegExp][] = [
    ['', /must start with "spiffe:\/\/"/],
    ['http://example.org/a', /must start with "spiffe:\/\/"/],
    ['SPIFFE://example.org/a', /must start with "spiffe:\/\/"/],
    ['spiffe:/example.org/a', /must start with/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///a', /trust domain is missing/],
    ['spiffe://Example.org/a', /lowercase/],
    ['spiffe://example.org:8080/a', /lowercase.*":"/],
    ['spiffe://user@example.org/a', /lowercase.*"@"/],
    ['spiffe://exa mple.org/a', /lowercase/],
    ['spiffe://example.org/', /must not end with a slash/],
    ['spiffe://example.org/a/', /must not end with a slash/],
    ['spiffe://example.org//a', /empty segment/],
    ['spiffe://example.org/a/./b', /"\." or "\.\." segments/],
    ['spiffe://example.org/a/..', /"\." or "\.\." segments/],
    ['spiffe://example.org/a?x=1', /query/],
    ['spiffe://example.org/a#frag', /fragment/],
    ['spiffe://example.org/a%20b', /limited to letters/],
    ['spiffe://example.org/a\0b', /limited to letters/],
    ['spiffe://example.org/é', /limited to letters/],
    [`spiffe://td/${'a'.repeat(2049 - 'spiffe://td/'.length)}`, /exceeds 2048 bytes/],
    [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
  ];
  for (const [id, message] of invalid) {
    test(`rejects ${JSON.stringify(id.slice(0, 60))}`, () => assert.throws(() => parseSpiffeId(id), message));
  }

  test('parseTrustDomain takes a bare name only', () => {
    assert.equal(parseTrustDomain('cluster.local'), 'cluster.local');
    assert.throws(() => parseTrustDomain('spiffe://cluster.local'), /lowercase/);
  });
});

describe('parseSubjectAltNames (Node\'s printed form)', () => {
  const cases: [string, ReturnType<typeof parseSubjectAltNames>][] = [
    ['', []],
    ['URI:spiffe://td/a', [{ type: 'URI', value: 'spiffe://td/a' }]],
    [
      'URI:spiffe://td/a, DNS:localhost, IP Address:127.0.0.1',
      [
        { type: 'URI', value: 'spiffe://td/a' },
        { type: 'DNS', value: 'localhost' },
        { type: 'IP Address', value: '127.0.0.1' },
      ],
    ],
    // One SAN whose value contains ", URI:" is printed quoted and stays one SAN (CVE-2021-44532 quoting).
    ['URI:"spiffe://td/a\\u002c URI:spiffe://x/y"', [{ type: 'URI', value: 'spiffe://td/a, URI:spiffe://x/y' }]],
    ['URI:"spiffe://td/a\\u0000.evil"', [{ type: 'URI', value: 'spiffe://td/a\0.evil' }]],
    ['DNS:"a\\"b", URI:spiffe://td/ok', [{ type: 'DNS', value: 'a"b' }, { type: 'URI', value: 'spiffe://td/ok' }]],
    ['DirName:"O=y\\u002cCN=x", URI:spiffe://td/ok', [{ type: 'DirName', value: 'O=y,CN=x' }, { type: 'URI', value: 'spiffe://td/ok' }]],
    // Anything off-grammar fails closed.
    ['URI:"unterminated', undefined],
    ['URI:"a"junk', undefined],
    ['no-colon', undefined],
  ];
  for (const [text, expected] of cases) {
    test(JSON.stringify(text), () => assert.deepEqual(parseSubjectAltNames(text), expected));
  }
});
