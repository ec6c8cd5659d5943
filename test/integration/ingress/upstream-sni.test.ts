// The SNI of the gateway's connections to an HTTPS upstream, and the name its certificate is checked against, are
// the configured ones (`tls.serverName`, else the upstream URL's host; none for an IP literal), never the client's
// Host: otherwise a client picks the name a shared SNI-routing backend routes by after the gateway authorized the
// request for the configured upstream, breaks DNS-identity upstreams, and costs one upstream handshake per Host
// change (undici redials when a request's servername differs from its connection's).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

interface SniBackend {
  port: number;
  /** The SNI of each TLS connection accepted, in order (null: none sent). */
  names: (string | null)[];
  close(): Promise<void>;
}

/** A real TLS upstream that records each connection's SNI and answers with the Host (or :authority) it got. */
async function startSniBackend(cert: { certPem: string; keyPem: string }, protocol: 'http1' | 'h2'): Promise<SniBackend> {
  const names: (string | null)[] = [];
  const options = { cert: cert.certPem, key: cert.keyPem };
  const reply = (host: string | undefined) => JSON.stringify({ host });
  const server =
    protocol === 'h2'
      ? http2.createSecureServer(options).on('stream', (stream, headers) => {
          stream.respond({ ':status': 200, 'content-type': 'application/json' });
          stream.end(reply(headers[':authority']));
        })
      : https.createServer(options, (req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(reply(req.headers.host));
        });
  server.on('secureConnection', (socket: TLSSocket) => names.push(socket.servername || null));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    names,
    close: () =>
      new Promise((resolve) => {
        if (server instanceof https.Server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('upstream TLS naming is fixed by config, not by the client Host', () => {
  const pki = testPki();
  const backendId = `spiffe://${pki.trustDomain}/ns/demo/sa/sni-backend`;
  // Certificates for the configured name only: neither the client's Host names nor 127.0.0.1.
  const svid = pki.issue({ spiffeId: backendId, dnsNames: ['backend.internal'] });
  const dnsOnly = pki.issue({ dnsNames: ['backend.internal'] });
  const ipOnly = pki.issue({ ipAddresses: ['127.0.0.1'] });
  let backends: Record<'spiffe' | 'dns' | 'url' | 'ip' | 'h2', SniBackend>;
  let ing: TestIngress;

  before(async () => {
    backends = {
      spiffe: await startSniBackend(svid, 'http1'),
      dns: await startSniBackend(dnsOnly, 'http1'),
      url: await startSniBackend(dnsOnly, 'http1'),
      ip: await startSniBackend(ipOnly, 'http1'),
      h2: await startSniBackend(dnsOnly, 'h2'),
    };
    const { spiffe, dns, url, ip, h2 } = backends;
    ing = await startTestIngress((config) => {
      config.upstreams.push(
        { name: 'sni-spiffe', url: `https://127.0.0.1:${spiffe.port}`, tls: { spiffeId: backendId, serverName: 'backend.internal' } },
        { name: 'sni-dns', url: `https://127.0.0.1:${dns.port}`, tls: { serverName: 'backend.internal' } },
        // No serverName: the URL's host is the name, dialled at the endpoint's address.
        { name: 'sni-url', url: `https://backend.internal:${url.port}`, endpoints: [{ address: `127.0.0.1:${url.port}` }] },
        { name: 'sni-ip', url: `https://127.0.0.1:${ip.port}` },
        { name: 'sni-h2', url: `https://127.0.0.1:${h2.port}`, protocol: 'h2', tls: { serverName: 'backend.internal' } },
      );
      for (const name of ['spiffe', 'dns', 'url', 'ip', 'h2']) {
        config.routes.unshift({ name: `sni-${name}`, match: { path: { prefix: `/sni-${name}` } }, upstream: `sni-${name}` });
        config.policies.push({ name: `sni-${name}`, action: 'ALLOW', routes: [`sni-${name}`], rules: [{}] });
      }
    });
  });
  after(async () => {
    await ing.close();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  /** Sequential requests through the gateway, each with the next Host (names the listener serves), one at a time. */
  async function alternate(path: string, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const host = i % 2 === 0 ? 'localhost' : 'api.test';
      const res = await request(ing.port, ing.caPem, { path, servername: host, headers: { host } });
      assert.equal(res.status, 200, `${path} with Host ${host}: ${res.text}`);
      // The forwarded Host stays the client's authority; only TLS naming is fixed.
      assert.equal(res.json<{ host: string }>().host, host);
    }
  }

  test('a SPIFFE upstream gets the configured serverName as SNI, on one connection whatever the Host', async () => {
    await alternate('/sni-spiffe/x', 6);
    assert.deepEqual(backends.spiffe.names, ['backend.internal']);
  });

  test('a DNS-identity upstream is checked against serverName, not the client Host', async () => {
    await alternate('/sni-dns/x', 6);
    assert.deepEqual(backends.dns.names, ['backend.internal']);
  });

  test("without serverName, the upstream URL's host name is the SNI and the name checked", async () => {
    await alternate('/sni-url/x', 4);
    assert.deepEqual(backends.url.names, ['backend.internal']);
  });

  test('an IP-literal upstream gets no SNI (RFC 6066), and its IP SAN is checked', async () => {
    await alternate('/sni-ip/x', 4);
    assert.deepEqual(backends.ip.names, [null]);
  });

  test('an h2 upstream gets the configured serverName as SNI on its one session', async () => {
    await alternate('/sni-h2/x', 4);
    assert.deepEqual(backends.h2.names, ['backend.internal']);
  });
});
