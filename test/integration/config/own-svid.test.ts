// `validate` refuses a mesh SVID its peers would refuse: one of another trust domain, or one the mesh bundle does
// not sign. Before, both passed (the key matched the certificate) and `run` started, ready, while every mutual-TLS
// upstream answered 502.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { issueCertificate } from '../../../certs/issue.js';
import { portcullis } from '../../helpers/cli.js';
import { writeTestIngress, type TestIngressFiles } from '../../helpers/ingress.js';

describe("validate checks the gateway's own SVID against the mesh", () => {
  let files: TestIngressFiles;
  before(async () => {
    files = await writeTestIngress();
  });
  after(async () => {
    await files.upstream.close();
    await files.jwks.close();
    fs.rmSync(files.dir, { recursive: true, force: true });
  });

  const validateWith = (svid: { certPem: string; keyPem: string }) => {
    files.writeFile('svid.pem', svid.certPem);
    files.writeFile('svid-key.pem', svid.keyPem);
    return portcullis(['validate', '-c', files.configFile]);
  };

  test('the mesh SVID of the test ingress validates (the control)', async () => {
    const ok = await validateWith(files.pki.issue({ spiffeId: `spiffe://${files.pki.trustDomain}/ns/gw/sa/gateway` }));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  });

  test('an SVID of another trust domain, or signed by a CA outside the bundle, is refused at /mesh', async () => {
    const foreign = issueCertificate(files.pki.otherCa, { keyType: 'ec', spiffeId: `spiffe://${files.pki.otherTrustDomain}/ns/gw/sa/gateway` });
    const wrongDomain = await validateWith(foreign);
    assert.equal(wrongDomain.code, 1);
    assert.match(wrongDomain.stderr, /\/mesh: .*spiffe:\/\/other\.test\/ns\/gw\/sa\/gateway is not in the mesh's trust domain portcullis\.test/);

    const unsigned = issueCertificate(files.pki.otherCa, { keyType: 'ec', spiffeId: `spiffe://${files.pki.trustDomain}/ns/gw/sa/gateway` });
    const outside = await validateWith(unsigned);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /\/mesh: .*not a certificate of the mesh bundle/);
  });
});
