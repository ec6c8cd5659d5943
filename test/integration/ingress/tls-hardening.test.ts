// Ingress TLS hardening with real clients: client-initiated renegotiation refused (openssl `R`), a listener's
// defaultHost served to ClientHellos without SNI (Host check still applied), RSA and ECDSA certificates side by
// side chosen by the client's signature algorithms, and TLS 1.2 ciphers and curves per listener.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { startGateway } from '../../../gateway/app.js';
import { ConfigError, loadConfigText } from '../../../gateway/config/load.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

/**
 * Runs `openssl s_client` against the gateway; after the handshake it writes `lines` one by one (a pause between
 * each), then closes stdin. Resolves with stdout + stderr.
 */
function sClient(port: number, args: readonly string[], lines: readonly string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let sent = false;
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString('latin1');
      if (!sent && /Verify return code|Verification error|handshake failure|alert/.test(output)) {
        sent = true;
        void (async () => {
          for (const line of lines) {
            await sleep(300);
            if (child.stdin.writable) child.stdin.write(line);
          }
          await sleep(500);
          child.stdin.end();
        })();
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', () => resolve(output));
    setTimeout(() => child.kill(), 8_000).unref();
  });
}

const serverKeyBits = (out: string) => Number(/Server public key is (\d+) bit/.exec(out)?.[1]);
const peerSignature = (out: string) => /Peer signature type: (\S+)/.exec(out)?.[1];

describe('ingress TLS hardening', () => {
  const pki = testPki();
  let ing: TestIngress;
  let caFile: string;

  before(async () => {
    const rsa = pki.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], keyType: 'rsa' });
    ing = await startTestIngress((config, { writeFile }) => {
      writeFile('rsa.pem', rsa.certPem);
      writeFile('rsa-key.pem', rsa.keyPem);
      const listener = config.listeners[0];
      listener.defaultHost = 'main';
      listener.hosts[0].tls.certificate = [
        { cert: 'rsa.pem', key: 'rsa-key.pem' },
        { cert: 'server.pem', key: 'server-key.pem' },
      ];
      listener.hosts.push({ name: 'other', hostnames: ['secure.test'], tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' } } });
    });
    caFile = path.join(ing.dir, 'ca.pem');
  });
  after(() => ing.close());

  test('client-initiated renegotiation (TLS 1.2, openssl `R`) ends the connection; nothing after it is served', async () => {
    const out = await sClient(ing.port, ['-tls1_2', '-servername', 'localhost', '-CAfile', caFile], ['R\n', 'GET /public/after HTTP/1.1\r\nHost: localhost\r\n\r\n']);
    assert.match(out, /Verify return code: 0 \(ok\)/, 'the first handshake succeeded');
    assert.match(out, /RENEGOTIATING/);
    const after = out.slice(out.indexOf('RENEGOTIATING'));
    // Node 20 refuses as the second handshake starts; Node 24's OpenSSL lets its messages through first, and
    // the refusal (ERR_TLS_RENEGOTIATION_DISABLED) follows. Either way the connection ends and serves nothing.
    assert.match(after, /error|closed/, 'the gateway ended the connection');
    assert.doesNotMatch(out, /HTTP\/1\.1 200/, 'no request was served after the renegotiation attempt');
    assert.ok(!ing.logs.some((l) => l.path === '/public/after'));
  });

  test('a ClientHello without SNI gets the defaultHost (openssl -noservername)', async () => {
    const out = await sClient(ing.port, ['-noservername', '-CAfile', caFile, '-verify_ip', '127.0.0.1']);
    assert.match(out, /Verify return code: 0 \(ok\)/);
  });

  test('without SNI, the Host check still applies: the default host answers, another host of the listener gets 421', async () => {
    const ok = await request(ing.port, ing.caPem, { servername: '' });
    assert.equal(ok.status, 200);
    const other = await request(ing.port, ing.caPem, { servername: '', headers: { host: 'secure.test' } });
    assert.equal(other.status, 421);
    assert.equal(other.json().code, 'GW_HOST_MISDIRECTED');
  });

  test('an RSA-only client gets the RSA certificate, an ECDSA-only client the ECDSA one (TLS 1.2 and 1.3)', async () => {
    const common = ['-servername', 'localhost', '-CAfile', caFile];
    const rsa12 = await sClient(ing.port, [...common, '-tls1_2', '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
    assert.equal(serverKeyBits(rsa12), 2048, rsa12);
    assert.match(peerSignature(rsa12) ?? '', /^RSA/);
    const ec12 = await sClient(ing.port, [...common, '-tls1_2', '-sigalgs', 'ECDSA+SHA256', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.equal(serverKeyBits(ec12), 256, ec12);
    assert.equal(peerSignature(ec12), 'ECDSA');
    const rsa13 = await sClient(ing.port, [...common, '-tls1_3', '-sigalgs', 'RSA-PSS+SHA256']);
    assert.equal(serverKeyBits(rsa13), 2048);
    const ec13 = await sClient(ing.port, [...common, '-tls1_3', '-sigalgs', 'ECDSA+SHA256']);
    assert.equal(serverKeyBits(ec13), 256);
  });

  test('the default TLS 1.2 profile (Mozilla intermediate) refuses CBC and static-RSA suites', async () => {
    const common = ['-servername', 'localhost', '-CAfile', caFile, '-tls1_2'];
    assert.match(await sClient(ing.port, [...common, '-cipher', 'ECDHE-RSA-AES128-SHA']), /alert handshake failure|no shared cipher|Cipher is \(NONE\)/);
    assert.match(await sClient(ing.port, [...common, '-cipher', 'AES128-GCM-SHA256']), /alert handshake failure|no shared cipher|Cipher is \(NONE\)/);
    assert.match(await sClient(ing.port, [...common, '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305']), /Cipher is ECDHE-RSA-CHACHA20-POLY1305/);
  });
});

describe('TLS 1.2 ciphers and curves per listener', () => {
  let ing: TestIngress;
  let caFile: string;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].tls = { ciphers: ['ECDHE-ECDSA-AES256-GCM-SHA384'], curves: ['P-384'] };
    });
    caFile = path.join(ing.dir, 'ca.pem');
  });
  after(() => ing.close());

  test('only the configured suite and group are negotiated', async () => {
    const common = ['-servername', 'localhost', '-CAfile', caFile, '-tls1_2'];
    const ok = await sClient(ing.port, common);
    assert.match(ok, /Cipher is ECDHE-ECDSA-AES256-GCM-SHA384/);
    assert.match(ok, /Server Temp Key: ECDH, (P-384|secp384r1)/);
    assert.match(await sClient(ing.port, [...common, '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']), /alert handshake failure|no shared cipher|Cipher is \(NONE\)/);
    assert.match(await sClient(ing.port, [...common, '-curves', 'X25519']), /alert handshake failure|Cipher is \(NONE\)/);
  });

  test('validation refuses weak suites, unknown curves and a defaultHost that is not a host of the listener', () => {
    const base = parse(fs.readFileSync(ing.configFile, 'utf8'));
    const load = (edit: (c: typeof base) => void) => {
      const config = structuredClone(base);
      edit(config);
      return () => loadConfigText(stringify(config), ing.configFile);
    };
    for (const cipher of ['AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'DES-CBC3-SHA', 'NULL-SHA', 'ALL']) {
      assert.throws(load((c) => (c.listeners[0].tls = { ciphers: [cipher] })), ConfigError, cipher);
    }
    assert.throws(load((c) => (c.listeners[0].tls = { curves: ['secp112r1'] })), ConfigError);
    assert.throws(load((c) => (c.listeners[0].defaultHost = 'nope')), /no virtual host named "nope"/);
    assert.doesNotThrow(load((c) => (c.listeners[0].defaultHost = 'main')));
  });

  test('two certificates of one key type on a host are refused at start (OpenSSL would keep only the last)', async () => {
    const config = structuredClone(ing.loaded.config);
    const host = config.listeners[0]!.hosts[0]!;
    assert.ok(host.tls.mode === 'terminate' && !Array.isArray(host.tls.certificate));
    host.tls.certificate = [host.tls.certificate, host.tls.certificate];
    await assert.rejects(startGateway(config, { logger: ing.logger }), /two certificates with ec keys/);
  });
});
