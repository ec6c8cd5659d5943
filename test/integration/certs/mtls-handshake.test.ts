// Issued certificates in a real mutual-TLS handshake on 127.0.0.1: node:tls verifies the chains, verifyPeerSpiffe
// checks the identities on both sides.
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { issueCertificate } from '../../../certs/issue.js';
import { createSpiffePeerVerifier, type PeerDecision } from '../../../certs/verify.js';
import type { CertKeyPem, KeyType } from '../../../certs/types.js';
import { testPki } from '../../helpers/pki.js';

const pki = testPki();
const id = (path: string) => `spiffe://${pki.trustDomain}/${path}`;
const serverId = id('ns/demo/sa/backend');
const clientId = id('ns/portcullis/sa/gateway');
const verifyClient = createSpiffePeerVerifier({ bundles: { [pki.trustDomain]: pki.ca.certPem }, expected: [clientId] });
const verifyServer = createSpiffePeerVerifier({ bundles: { [pki.trustDomain]: pki.ca.certPem }, expected: [serverId] });

interface Server {
  port: number;
  close(): Promise<void>;
}

async function startServer(cert: CertKeyPem): Promise<Server> {
  const server = tls.createServer(
    // rejectUnauthorized is off only so the test can read OpenSSL's verdict (authorizationError) instead of a reset;
    // the SPIFFE check still runs only on an authorized peer.
    { cert: cert.certPem, key: cert.keyPem, ca: [pki.ca.certPem], requestCert: true, rejectUnauthorized: false },
    (socket) => {
      const verdict: Verdict = socket.authorized
        ? verifyClient(socket.getPeerCertificate(true))
        : { tlsError: String(socket.authorizationError) };
      socket.end(JSON.stringify(verdict));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Connects with `client`, checking the server by SPIFFE ID (not hostname); resolves to the server's verdict. */
type Verdict = PeerDecision | { tlsError: string };

function connect(port: number, client: CertKeyPem | undefined): Promise<{ server: Verdict; seen: PeerDecision }> {
  return new Promise((resolve, reject) => {
    let seen: PeerDecision | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: [pki.ca.certPem],
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
      // The chain was verified by OpenSSL against `ca`; identity is the URI SAN, as a mesh client checks it.
      checkServerIdentity: (_host, cert) => {
        seen = verifyServer(cert);
        return seen.ok ? undefined : new Error(`server identity: ${seen.reason}`);
      },
    });
    let body = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (body += chunk));
    socket.on('end', () => {
      socket.destroy();
      if (body === '') reject(new Error('connection closed without a verdict'));
      else resolve({ server: JSON.parse(body) as Verdict, seen: seen! });
    });
    socket.on('error', reject);
  });
}

for (const keyType of ['ec', 'rsa'] as KeyType[]) {
  describe(`mutual TLS with ${keyType} SVIDs`, () => {
    let server: Server;
    before(async () => {
      server = await startServer(pki.issue({ spiffeId: serverId, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], keyType }));
    });
    after(() => server.close());

    test('both sides verify the other\'s SPIFFE ID', async () => {
      const r = await connect(server.port, pki.issue({ spiffeId: clientId, keyType }));
      assert.deepEqual(r.server, { ok: true, spiffeId: clientId, trustDomain: pki.trustDomain });
      assert.deepEqual(r.seen, { ok: true, spiffeId: serverId, trustDomain: pki.trustDomain });
    });

    test('a client of the same CA with another identity completes TLS but is refused by identity', async () => {
      const r = await connect(server.port, pki.issue({ spiffeId: id('ns/shop/sa/intruder'), keyType }));
      assert.equal('reason' in r.server && r.server.reason, 'unexpected-id');
    });

    const refused: [string, () => CertKeyPem | undefined, string][] = [
      ['an expired client certificate', () => pki.expired({ spiffeId: clientId, keyType }), 'CERT_HAS_EXPIRED'],
      ['a client certificate from another trust domain\'s CA', () => issueCertificate(pki.otherCa, { spiffeId: clientId, keyType }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['no client certificate', () => undefined, 'UNABLE_TO_GET_ISSUER_CERT'],
    ];
    for (const [name, client, tlsError] of refused) {
      test(`${name} is refused by OpenSSL`, async () => {
        const r = await connect(server.port, client());
        assert.deepEqual(r.server, { tlsError });
      });
    }
  });
}

test('a server with the wrong SPIFFE ID is refused by the client', async () => {
  const server = await startServer(pki.issue({ spiffeId: id('ns/demo/sa/impostor'), dnsNames: ['localhost'] }));
  try {
    await assert.rejects(connect(server.port, pki.issue({ spiffeId: clientId })), /server identity: unexpected-id/);
  } finally {
    await server.close();
  }
});
