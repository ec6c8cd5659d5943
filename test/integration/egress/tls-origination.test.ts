// TLS origination: a workload sends plain `http://secure.test/…` to the egress gateway, which carries it to the
// upstream over TLS, verifying the server against the configured CA and, with `mutual`, presenting the gateway SVID.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { compileRevocationList } from '../../../certs/verify.js';
import { testPki } from '../../helpers/pki.js';
import { curl, localGrant, startProxy, startTlsUpstream, tempDir, type TempDir, type TlsUpstream } from './harness.js';

const GATEWAY_ID = 'spiffe://portcullis.test/egress-gateway';

describe('TLS origination', () => {
  let dir: TempDir;
  let upstream: TlsUpstream;

  before(async () => {
    dir = tempDir();
    upstream = await startTlsUpstream();
  });

  after(async () => {
    await upstream.close();
    dir.remove();
  });

  /** Sends `http://secure.test<path>` through `proxy` (closed after): a 502 GW_UPSTREAM_IDENTITY, the upstream never hit. */
  const refusedUnsent = async (proxy: Awaited<ReturnType<typeof startProxy>>, path: string) => {
    const hitsBefore = upstream.hits;
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '-i', `http://secure.test${path}`]);
      assert.match(r.stdout, /^HTTP\/1\.1 502/);
      assert.match(r.stdout, /x-portcullis-code: GW_UPSTREAM_IDENTITY/i);
      assert.equal(upstream.hits, hitsBefore);
    } finally {
      await proxy.close();
    }
  };

  const config = (ca: string, mutual: boolean) => ({
    ...localGrant('secure.test', upstream.port),
    originate: [{ host: 'secure.test', port: upstream.port, tls: { ca, mutual } }],
  });

  test('plain http:// goes out over verified TLS with the right SNI and Host', async () => {
    const proxy = await startProxy(dir, config(dir.file('ca.pem', testPki().ca.certPem), false));
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, 'http://secure.test/orig']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'tls hello; client=none');
      assert.equal(upstream.lastHeaders?.host, `secure.test:${upstream.port}`);
    } finally {
      await proxy.close();
    }
    const [record] = proxy.records();
    assert.equal(record?.proxyType, 'originate');
    assert.equal(record?.port, upstream.port);
    assert.equal(record?.sni, 'secure.test');
    assert.equal(record?.status, 200);
  });

  test('mutual: the gateway presents its SVID', async () => {
    const pki = testPki();
    const svid = pki.issue({ spiffeId: GATEWAY_ID });
    const proxy = await startProxy(dir, config(dir.file('ca.pem', pki.ca.certPem), true), {
      mesh: { certPem: svid.certPem, keyPem: svid.keyPem, bundlePem: pki.ca.certPem },
    });
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, 'http://secure.test/mutual']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `tls hello; client=URI:${GATEWAY_ID}`);
    } finally {
      await proxy.close();
    }
  });

  test('a server certificate from an untrusted CA is refused with 502 and nothing is sent', async () => {
    await refusedUnsent(await startProxy(dir, config(dir.file('other-ca.pem', testPki().otherCa.certPem), false)), '/untrusted');
  });

  test('a server certificate listed in mesh.revoked is refused with 502, its reason audited, and nothing is sent', async () => {
    const pki = testPki();
    const svid = pki.issue({ spiffeId: GATEWAY_ID });
    const proxy = await startProxy(dir, config(dir.file('ca.pem', pki.ca.certPem), false), {
      mesh: { certPem: svid.certPem, keyPem: svid.keyPem, bundlePem: pki.ca.certPem, revoked: compileRevocationList({ serials: [upstream.serial] }) },
    });
    await refusedUnsent(proxy, '/revoked');
    const [record] = proxy.records();
    assert.equal(record?.code, 'GW_UPSTREAM_IDENTITY');
    assert.equal(record?.reason, 'server_certificate_revoked');
  });

  test('mutual origination without the mesh SVID fails at creation', async () => {
    await assert.rejects(() => startProxy(dir, config(dir.file('ca.pem', testPki().ca.certPem), true)), /needs the mesh SVID/);
  });
});
