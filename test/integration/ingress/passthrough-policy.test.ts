// A passthrough host's connections can be judged by policy before a byte is spliced: a policy that names the host
// in `routes` sees the client's address, the listener port and the SNI (all a gateway that never decrypts can see).
// A refused client gets a TLS access_denied alert and the upstream never hears of it; a dry-run policy only reports.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startEchoServer, type EchoServer } from '../../../gateway/dev/demo-backend.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';
import { testPki } from '../../helpers/pki.js';

const run = promisify(execFile);

describe('passthrough hosts under policy', () => {
  const pki = testPki();
  const backendCert = pki.issue({ dnsNames: ['legacy.test', 'vault.test', 'open.test'] });
  const client = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/legacy/sa/client` });
  let backend: EchoServer;
  /** Counts what reaches the upstream of the host that refuses everyone here. */
  let guarded: net.Server;
  let guardedConnections = 0;
  let ing: TestIngress;

  before(async () => {
    backend = await startEchoServer({ certPem: backendCert.certPem, keyPem: backendCert.keyPem, caPem: pki.ca.certPem });
    guarded = net.createServer((s) => {
      guardedConnections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => guarded.listen(0, '127.0.0.1', resolve));
    ing = await startTestIngress((config) => {
      config.listeners[0].hosts.push(
        { name: 'legacy', hostnames: ['legacy.test'], tls: { mode: 'passthrough', upstream: 'legacy' } },
        { name: 'vault', hostnames: ['vault.test'], tls: { mode: 'passthrough', upstream: 'vault' } },
        { name: 'open', hostnames: ['open.test'], tls: { mode: 'passthrough', upstream: 'legacy' } },
      );
      config.upstreams.push(
        { name: 'legacy', url: `tcp://127.0.0.1:${backend.port}` },
        { name: 'vault', url: `tcp://127.0.0.1:${(guarded.address() as net.AddressInfo).port}` },
      );
      config.policies.push(
        {
          name: 'legacy-from-loopback',
          action: 'ALLOW',
          routes: ['legacy'],
          rules: [{ from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }], when: [{ key: 'connection.sni', values: ['legacy.test'] }] }],
        },
        { name: 'legacy-tighter', action: 'DENY', mode: 'dry-run', routes: ['legacy'], rules: [{ from: [{ source: { ipBlocks: ['127.0.0.1/32'] } }] }] },
        { name: 'vault-from-office', action: 'ALLOW', routes: ['vault'], rules: [{ from: [{ source: { ipBlocks: ['10.20.0.0/16'] } }] }] },
        // Applies to every route, never to a passthrough host: `open` stays open.
        { name: 'no-tokens-no-entry', action: 'DENY', rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }] }] },
      );
    });
  });
  after(async () => {
    await ing.close();
    await backend.close();
    await new Promise((resolve) => guarded.close(resolve));
  });

  const connect = (servername: string) =>
    tls.connect({ host: '127.0.0.1', port: ing.port, servername, ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem, ALPNProtocols: ['http/1.1'] });

  const get = async (servername: string): Promise<string> => {
    const socket = connect(servername);
    await once(socket, 'secureConnect');
    socket.write(`GET /x HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    let text = '';
    for await (const chunk of socket) text += (chunk as Buffer).toString('latin1');
    return text;
  };

  test('an allowed source reaches the upstream; a dry-run DENY that matches only reports', async () => {
    assert.match(await get('legacy.test'), /^HTTP\/1\.1 200/);
    const wouldDeny = ing.logs.find((l) => l.event === 'DRY_RUN_WOULD_DENY' && l.route === 'legacy');
    assert.ok(wouldDeny, 'the dry-run DENY is reported');
    assert.equal(wouldDeny.policy, 'legacy-tighter');
    // The gateway logs the close once both sides are gone, which may be after the client saw it.
    const closed = await until('the close line', () => ing.logs.find((l) => l.event === 'PASSTHROUGH_CLOSED' && l.vhost === 'legacy'), 5_000);
    assert.equal(closed.connection, wouldDeny.requestId, 'one id ties the decision to the spliced connection');
  });

  test('a source no ALLOW matches gets a TLS access_denied alert; the upstream never sees a connection', async () => {
    const socket = connect('vault.test');
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED');
    assert.equal(guardedConnections, 0);
    const refused = ing.logs.find((l) => l.event === 'TLS_REFUSED' && l.sni === 'vault.test');
    assert.equal(refused?.reason, 'no_allow_policy_matched');
    assert.match(String(refused?.connection), /^[0-9a-f-]{36}$/);
  });

  test('openssl s_client names the refusal: alert access denied', async () => {
    // s_client exits non-zero on the refused handshake; its stderr says why.
    const out = await run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${ing.port} -servername vault.test 2>&1 || true`]);
    assert.match(out.stdout, /alert access denied/);
    assert.equal(guardedConnections, 0);
  });

  test('a passthrough host no policy names stays open, whatever the policies without routes say', async () => {
    assert.match(await get('open.test'), /^HTTP\/1\.1 200/);
  });

  test('policies see the port the listener bound (configured as 0), not 0', async () => {
    const config = structuredClone(ing.loaded.config);
    const onPort = (port: number) => ({ key: 'destination.port', values: [String(port)] });
    config.policies = [
      ...(config.policies ?? []),
      { name: 'open-to-all', action: 'ALLOW', routes: ['open'], rules: [{}] },
      { name: 'open-on-this-port', action: 'DENY', mode: 'dry-run', routes: ['open'], rules: [{ when: [onPort(ing.port)] }] },
    ];
    await ing.gateway.reload(config);
    assert.match(await get('open.test'), /^HTTP\/1\.1 200/);
    await until('the dry-run line', () => ing.logs.find((l) => l.event === 'DRY_RUN_WOULD_DENY' && l.policy === 'open-on-this-port'), 5_000);
  });
});
