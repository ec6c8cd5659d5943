// Certificates and config change under load: traffic flows the whole time (new connections and
// kept-alive ones), the files are rewritten the way an external issuer or a ConfigMap update does, and
// not one request may fail. Invalid configs in between are refused while the last good one serves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fs from 'node:fs';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { createReloader, type Reloader } from '../../../gateway/reload.js';
import { request, servedSerial, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { keepTraffic, trafficSince } from '../../helpers/load.js';
import { testPki } from '../../helpers/pki.js';

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('certificate rotation without restarts', () => {
  const pki = testPki();
  let ing: TestIngress;
  let reloader: Reloader;
  before(async () => {
    ing = await startTestIngress();
    reloader = createReloader({ load: () => loadConfigFile(ing.configFile), parts: [ing.gateway], initial: ing.loaded, logger: ing.logger, watchIntervalMs: 50, settleMs: 50 });
  });
  after(async () => {
    reloader.close();
    await ing.close();
  });

  test('the listener certificate and the gateway SVID are replaced five times under load, no request fails', async () => {
    const load = keepTraffic(ing);
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const server = pki.issue({ dnsNames: ['localhost', 'api.test'], ipAddresses: ['127.0.0.1'] });
      const svid = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/portcullis/sa/gateway` });
      ing.writeFile('server-key.pem', server.keyPem);
      ing.writeFile('server.pem', server.certPem);
      ing.writeFile('svid-key.pem', svid.keyPem);
      ing.writeFile('svid.pem', svid.certPem);
      const wanted = server.serial.replace(/^0+/, '');
      const served = await eventually(() => servedSerial(ing.port, ing.caPem), (s) => s === wanted);
      assert.equal(served, wanted, `rotation ${i + 1}: new connections see the new certificate`);
      const echo = await eventually(
        async () => (await request(ing.port, ing.caPem)).json(),
        (e) => e.peerSerial?.replace(/^0+/, '') === svid.serial.replace(/^0+/, ''),
      );
      assert.equal(echo.peerSerial?.replace(/^0+/, ''), svid.serial.replace(/^0+/, ''), 'upstreams see the new SVID');
      seen.push(served);
      await trafficSince(load, load.sent, 40);
    }
    await new Promise((r) => setTimeout(r, 200));
    await load.stop();
    console.log(`rotation: ${load.sent} requests, ${load.failed} failed, ${seen.length} rotations`);
    assert.equal(load.failed, 0, load.errors.slice(0, 5).join('; '));
    assert.ok(load.sent >= 200, `enough traffic (${load.sent})`);
    assert.equal(new Set(seen).size, 5);
  });
});

describe('config reload under load', () => {
  let ing: TestIngress;
  let reloader: Reloader;
  before(async () => {
    ing = await startTestIngress();
    reloader = createReloader({ load: () => loadConfigFile(ing.configFile), parts: [ing.gateway], initial: ing.loaded, logger: ing.logger, watchIntervalMs: 0 });
  });
  after(async () => {
    reloader.close();
    await ing.close();
  });

  test('30 reloads, every third one invalid: invalid ones refused, the last good config serves, no request fails', async () => {
    const good = parse(fs.readFileSync(ing.configFile, 'utf8'));
    const load = keepTraffic(ing);
    let applied = 0;
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 2) {
        const broken = i % 2 === 0 ? 'version: v1\nlisteners: [' : stringify({ ...good, routes: [{ name: 'x', match: {}, upstream: 'missing' }] });
        fs.writeFileSync(ing.configFile, broken);
      } else {
        const next = structuredClone(good);
        next.policies.push({ name: `extra-${i}`, action: 'AUDIT', routes: ['public'], rules: [{}] });
        fs.writeFileSync(ing.configFile, stringify(next));
      }
      const result = await reloader.reload('test');
      if (result.ok) applied++;
      else refused++;
      await trafficSince(load, load.sent, 8);
    }
    await load.stop();
    console.log(`reload: ${load.sent} requests, ${load.failed} failed, ${applied} reloads applied, ${refused} refused`);
    assert.equal(refused, 10);
    assert.equal(applied, 20);
    assert.equal(load.failed, 0, load.errors.slice(0, 5).join('; '));
    assert.ok(load.sent >= 240, `enough traffic (${load.sent})`);
    assert.ok(ing.logs.some((l) => l.event === 'CONFIG_REJECTED'));
    // The last applied config is the one serving: its AUDIT policy is the one logged.
    await request(ing.port, ing.caPem);
    const audit = ing.logs.filter((l) => l.event === 'AUTHZ_AUDIT').at(-1) as { audit: { policy: string }[] };
    assert.equal(audit.audit[0]?.policy, 'extra-28');
  });
});
