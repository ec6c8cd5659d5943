// The CVE-2025-68121 class (Go's crypto/tls): a resumed TLS session skips the client-certificate check, so a
// session must resume only on the host that judged its certificate; otherwise a certificate one host trusts (a
// partner CA) is carried, unverified, into a host that demands another CA. Each host's tickets and session ids are
// bound to the host and its client check.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { issueCertificate } from '../../../certs/issue.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

interface Connected {
  socket: tls.TLSSocket;
  /** The session to resume with: TLS 1.3 tickets arrive after the handshake. */
  session: Promise<Buffer>;
}

function connect(port: number, options: tls.ConnectionOptions): Promise<Connected> {
  return new Promise((resolve, reject) => {
    let gotSession!: (s: Buffer) => void;
    const session = new Promise<Buffer>((r) => (gotSession = r));
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    socket.once('session', gotSession);
    socket.once('secureConnect', () => resolve({ socket, session }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the handshake')));
  });
}

/** One request on an established connection; resolves with the status line, or rejects when the server hangs up. */
function statusLine(socket: tls.TLSSocket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    socket.once('end', () => (reply ? resolve(reply.split('\r\n')[0]!) : reject(new Error('no reply'))));
    socket.once('error', reject);
    socket.write(`GET /ops/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

const PARTNER = 'partner.wild.test';
const SECURE = 'secure.test';

describe('TLS session resumption is bound to the host that verified the client', () => {
  const pki = testPki();
  let ing: TestIngress;
  // Signed by a partner CA that only the partner host trusts, with an identity the `secure.test` policy allows.
  const partnerClient = issueCertificate(pki.otherCa, { keyType: 'ec', spiffeId: `spiffe://${pki.trustDomain}/ns/ops/sa/admin` });

  before(async () => {
    ing = await startTestIngress((config, { writeFile }) => {
      // Names the test server certificate covers.
      const host = (name: string, hostname: string, clientCa: string) => ({
        name,
        hostnames: [hostname],
        tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientAuth: 'required', clientCa },
      });
      config.listeners[0].hosts.push(
        host('partner', PARTNER, writeFile('partner-ca.pem', pki.otherCa.certPem)),
        host('secure', SECURE, writeFile('mesh-ca.pem', pki.ca.certPem)),
      );
      config.routes.push({ name: 'ops', match: { hosts: ['partner', 'secure'], path: { prefix: '/ops' } }, upstream: 'echo' });
      config.policies.push({
        name: 'ops',
        action: 'ALLOW',
        routes: ['ops'],
        rules: [{ from: [{ source: { principals: [`${pki.trustDomain}/ns/ops/sa/admin`] } }] }],
      });
    });
  });
  after(() => ing.close());

  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    test(`${maxVersion}: a partner session offered to another host is not resumed, and no certificate means no handshake`, async () => {
      const first = await connect(ing.port, { servername: PARTNER, ca: ing.caPem, maxVersion, cert: partnerClient.certPem, key: partnerClient.keyPem });
      assert.equal(await statusLine(first.socket, PARTNER), 'HTTP/1.1 200 OK', 'the partner is served where its CA is trusted');
      const session = await first.session;

      const again = await connect(ing.port, { servername: PARTNER, ca: ing.caPem, maxVersion, session });
      assert.equal(again.socket.isSessionReused(), true, 'resumption still works on the host that issued the session');
      again.socket.destroy();

      // Without the binding this handshake resumed, `authorized` and carrying the partner certificate: 200.
      await assert.rejects(
        connect(ing.port, { servername: SECURE, ca: ing.caPem, maxVersion, session }).then(({ socket }) => statusLine(socket, SECURE)),
        'the session must not stand in for a certificate the secure host verifies',
      );
    });
  }
});
