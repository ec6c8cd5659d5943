// Egress policy is part of the reloaded config (issue #11): a revoked rule refuses new tunnels and requests after
// one reload (SIGHUP and the admin endpoint both call the reloader used here), open tunnels continue unless
// `egress.reload.cutRevokedTunnels` asks to cut them, and a reload whose egress part cannot be built changes nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { createReloader, type Reloader } from '../../../gateway/reload.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';
import { connectRequest, curl, eventually, localGrant, rawRequest, startHttpUpstream, startTlsUpstream, type RawResponse, type Upstream } from './harness.js';

type Config = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('egress reload', () => {
  let up: Upstream;
  let ing: TestIngress;
  let reloader: Reloader;
  let proxyPort: number;
  let auditFile: string;

  const grant = (port: number) => ({ name: 'up', identities: ['local'], hosts: ['up.test'], ports: [port] });

  before(async () => {
    up = await startHttpUpstream('partner');
    ing = await startTestIngress((config, { dir }) => {
      auditFile = `${dir}/egress-audit.jsonl`;
      config.egress = {
        listener: { address: '127.0.0.1', port: 0 },
        sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
        allow: [grant(up.port)],
        staticHosts: [{ host: 'up.test', addresses: ['127.0.0.1'] }],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
        audit: { file: auditFile },
      };
    });
    proxyPort = ing.gateway.ports.get('egress')!;
    reloader = createReloader({ load: () => loadConfigFile(ing.configFile), parts: [ing.gateway], initial: ing.loaded, logger: ing.logger, watchIntervalMs: 0 });
  });
  after(async () => {
    reloader.close();
    await ing.close();
    await up.close();
  });

  /** Rewrites the config file through `edit` and reloads as SIGHUP would. */
  const reloadWith = async (edit: (config: Config) => void) => {
    const config = parse(fs.readFileSync(ing.configFile, 'utf8')) as Config;
    edit(config);
    fs.writeFileSync(ing.configFile, stringify(config));
    const result = await reloader.reload('sighup');
    // The config hash of a successful reload is not what these tests are about.
    return result.ok ? { ok: true as const } : result;
  };
  const viaCurl = () => curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${proxyPort}`, `http://up.test:${up.port}/`]);
  const tunnel = () => rawRequest(proxyPort, connectRequest(`up.test:${up.port}`));
  /** One request through an open tunnel; resolves with the answer, or 'closed'. */
  const through = (t: RawResponse) =>
    new Promise<string>((resolve) => {
      t.socket.once('data', (c: Buffer) => resolve(c.toString()));
      t.socket.once('close', () => resolve('closed'));
      t.socket.write('GET / HTTP/1.1\r\nHost: up.test\r\n\r\n');
    });
  const records = () =>
    fs
      .readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  test('a revoked rule refuses new tunnels and requests after one reload; an open tunnel continues by default', async () => {
    assert.equal((await viaCurl()).stdout, '200');
    const open = await tunnel();
    assert.equal(open.status, 200);
    assert.match(await through(open), /hello from partner/);

    assert.deepEqual(await reloadWith((c) => (c.egress.allow = [])), { ok: true });
    assert.equal((await viaCurl()).stdout, '403');
    const refused = await tunnel();
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['x-portcullis-code'], 'GW_EGRESS_DENIED');
    assert.match(await through(open), /hello from partner/, 'the tunnel opened before the reload still works');
    open.socket.destroy();
  });

  test('with reload.cutRevokedTunnels, tunnels the new config refuses are cut and audited as revoked', async () => {
    assert.deepEqual(
      await reloadWith((c) => {
        c.egress.allow = [grant(up.port)];
        c.egress.reload = { cutRevokedTunnels: true };
      }),
      { ok: true },
    );
    const open = await tunnel();
    assert.equal(open.status, 200);
    assert.match(await through(open), /hello from partner/);
    const closed = new Promise<void>((resolve) => open.socket.once('close', () => resolve()));
    assert.deepEqual(await reloadWith((c) => (c.egress.allow = [])), { ok: true });
    await closed;
    await eventually(() => records().some((r) => r.end === 'revoked'));
    const cut = records().find((r) => r.end === 'revoked');
    assert.equal(cut?.host, 'up.test');
    assert.equal(cut?.proxyType, 'connect');
  });

  test('with reload.cutRevokedTunnels, a forwarded request in progress is cut too, audited as revoked', async () => {
    let received!: () => void;
    const arrived = new Promise<void>((resolve) => (received = resolve));
    const slow = http.createServer(() => received()); // never answers
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as AddressInfo).port;
    try {
      const slowGrant = { name: 'slow', identities: ['local'], hosts: ['slow.test'], ports: [slowPort] };
      assert.deepEqual(
        await reloadWith((c) => {
          c.egress.allow = [grant(up.port), slowGrant];
          c.egress.staticHosts.push({ host: 'slow.test', addresses: ['127.0.0.1'] });
        }),
        { ok: true },
      );
      const answer = rawRequest(proxyPort, `GET http://slow.test:${slowPort}/ HTTP/1.1\r\nHost: slow.test:${slowPort}\r\n\r\n`).catch(() => undefined);
      await arrived;
      assert.deepEqual(await reloadWith((c) => (c.egress.allow = [grant(up.port)])), { ok: true });
      await answer;
      await eventually(() => records().some((r) => r.host === 'slow.test'));
      const cut = records().find((r) => r.host === 'slow.test');
      assert.equal(cut?.reason, 'revoked');
      assert.equal(cut?.code, 'GW_EGRESS_DENIED');
    } finally {
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  test('a reload whose egress part cannot be built is refused whole: the old ingress and egress runtimes stay', async () => {
    assert.deepEqual(await reloadWith((c) => (c.egress.allow = [grant(up.port)])), { ok: true });
    const ingressBefore = ing.gateway.runtime();
    const result = await reloadWith((c) => {
      c.routes.push({ name: 'extra', match: { path: { prefix: '/extra' } }, upstream: 'echo' });
      c.egress.allow = [];
      // Passes the schema, fails the egress build: static hosts are exact names.
      c.egress.staticHosts.push({ host: '*.wild.test', addresses: ['127.0.0.1'] });
    });
    assert.equal(result.ok, false);
    assert.equal(ing.gateway.runtime(), ingressBefore, 'the ingress runtime was not swapped');
    assert.equal((await viaCurl()).stdout, '200', 'the egress rule revoked by the refused config still applies');
    assert.deepEqual(await reloadWith((c) => c.egress.staticHosts.pop()), { ok: true });
  });

  test('a changed audit.file gets the records of new attempts; the old file keeps what it had', async () => {
    const movedTo = `${auditFile}.moved`;
    const before = records().length;
    assert.deepEqual(
      await reloadWith((c) => {
        c.egress.allow = [grant(up.port)];
        c.egress.audit.file = movedTo;
      }),
      { ok: true },
    );
    assert.equal((await viaCurl()).stdout, '200');
    const moved = () => (fs.existsSync(movedTo) ? fs.readFileSync(movedTo, 'utf8').split('\n').filter(Boolean) : []);
    await eventually(() => moved().length === 1);
    assert.equal(records().length, before);
    assert.deepEqual(await reloadWith((c) => (c.egress.audit.file = auditFile)), { ok: true });
  });

  test('a listener change, or removing the section, needs a restart: the reload is refused with a message saying so', async () => {
    const result = await reloadWith((c) => (c.egress.listener.port = 1));
    assert.equal(result.ok, false);
    assert.match(JSON.stringify(!result.ok && result.issues), /egress\.listener.*restart/);
    await reloadWith((c) => (c.egress.listener.port = 0));
    const removed = await reloadWith((c) => delete c.egress);
    assert.equal(removed.ok, false);
    assert.match(JSON.stringify(!removed.ok && removed.issues), /adding or removing the egress section takes effect on restart only/);
  });
});

test('the TLS proxy listener certificate counts in readiness and the expiry metric', async () => {
  const ing = await startTestIngress((config) => {
    config.egress = {
      listener: { address: '127.0.0.1', port: 0, tls: { certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientCa: 'ca.pem' } },
      allow: [],
    };
  });
  try {
    assert.ok(ing.gateway.runtime().certificates.some((c) => c.name === 'egress'));
    assert.match(await ing.gateway.metrics.registry.metrics(), /portcullis_certificate_expiry_timestamp_seconds\{[^}]*egress[^}]*\}/);
    assert.equal(ing.gateway.ready(), true);
  } finally {
    await ing.close();
  }
});

test('originate mutual presents the mesh SVID read at each build: a rotated SVID after one reload', async () => {
  const upstream = await startTlsUpstream();
  const ing = await startTestIngress((config) => {
    config.egress = {
      listener: { address: '127.0.0.1', port: 0 },
      ...localGrant('secure.test', upstream.port),
      originate: [{ host: 'secure.test', port: upstream.port, tls: { ca: 'ca.pem', mutual: true } }],
    };
  });
  const reloader = createReloader({ load: () => loadConfigFile(ing.configFile), parts: [ing.gateway], initial: ing.loaded, logger: ing.logger, watchIntervalMs: 0 });
  const viaProxy = async () => (await curl(['-x', `http://127.0.0.1:${ing.gateway.ports.get('egress')}`, 'http://secure.test/'])).stdout;
  try {
    assert.equal(await viaProxy(), `tls hello; client=URI:spiffe://${ing.trustDomain}/ns/portcullis/sa/gateway`);
    const rotated = testPki().issue({ spiffeId: `spiffe://${ing.trustDomain}/ns/portcullis/sa/gateway-rotated` });
    ing.writeFile('svid.pem', rotated.certPem);
    ing.writeFile('svid-key.pem', rotated.keyPem);
    assert.equal((await reloader.reload('file_change')).ok, true);
    assert.equal(await viaProxy(), `tls hello; client=URI:spiffe://${ing.trustDomain}/ns/portcullis/sa/gateway-rotated`);
  } finally {
    reloader.close();
    await ing.close();
    await upstream.close();
  }
});
