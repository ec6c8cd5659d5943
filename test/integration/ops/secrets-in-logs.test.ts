// Secrets given to the gateway in every input it has (URL userinfo and query values in the config, a Redis password
// in a config a reload refuses, a bearer token, a cookie, a private key file, the admin token, credentials a route
// sets on upstream requests, also in a config a reload or `validate` refuses) never appear in any log line, in
// `/config` or in `validate`'s output; and the access line has its one shape: ISO time, user agent, SNI, TLS version and
// cipher, upstream address.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { createAdminServer, type AdminServer } from '../../../gateway/admin/server.js';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { createReloader } from '../../../gateway/reload.js';
import { portcullis, type CliResult } from '../../helpers/cli.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

const JWKS_PASSWORD = 'jwks-password-7f3a91';
const JWKS_QUERY_SECRET = 'jwks-query-secret-c2e8d4';
const REDIS_PASSWORD = 'redis-password-5b6e02';
const COOKIE_SECRET = 'cookie-secret-9d1f7a';
const ADMIN_TOKEN = 'admin-token-3c4d5e6f7a8b9c0d';
const UPSTREAM_BASIC = 'dXBzdHJlYW0tYmFzaWMtNGE4Yw==';
const UPSTREAM_API_KEY = 'upstream-api-key-e1f2a3';
/** In the refused config only: a header value with the trailing newline of YAML's `value: |`. */
const REFUSED_BASIC = 'cmVmdXNlZC1iYXNpYy03YjVk';
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('secrets stay out of logs and /config; the access line has one shape', () => {
  let gw: TestIngress;
  let admin: AdminServer;
  let adminPort: number;
  let token: string;
  let keyPem: string;
  let configDump: string;
  let reloadAnswer: unknown;
  let validated: CliResult;

  before(async () => {
    gw = await startTestIngress((config, { writeFile }) => {
      const leaky = new URL(config.jwtProviders[0].jwksUri);
      leaky.username = 'jwks-user';
      leaky.password = JWKS_PASSWORD;
      leaky.search = `?api_key=${JWKS_QUERY_SECRET}&tenant=t1`;
      config.jwtProviders.push({ name: 'leaky', issuer: 'https://leaky.test', jwksUri: leaky.href });
      config.admin = { address: '127.0.0.1', port: 0, tokenFile: writeFile('admin-token', ADMIN_TOKEN) };
      const set = [{ name: 'Authorization', value: `Basic ${UPSTREAM_BASIC}` }, { name: 'x-api-key', value: UPSTREAM_API_KEY }, { name: 'x-tenant', value: 't1' }];
      config.routes[1].filters = [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set } }];
    });
    keyPem = fs.readFileSync(`${gw.dir}/server-key.pem`, 'utf8');
    admin = createAdminServer(
      { port: 0, tokenFile: gw.loaded.config.admin!.tokenFile! },
      {
        logger: gw.logger,
        registry: gw.gateway.metrics.registry,
        ready: () => gw.gateway.ready(),
        reload: async () => ({ ok: true }),
        config: () => gw.gateway.runtime().config,
      },
    );
    ({ port: adminPort } = await admin.listen());

    token = await gw.jwks.sign({ sub: 'alice' });
    const headers = { authorization: `Bearer ${token}`, cookie: `session=${COOKIE_SECRET}`, 'user-agent': 'secrets-test/1.0' };
    assert.equal((await request(gw.port, gw.caPem, { path: '/api/orders', headers })).status, 200);
    assert.equal((await request(gw.port, gw.caPem, { path: '/api/orders', headers: { ...headers, authorization: `Bearer ${token}x` } })).status, 401);

    // A reload of a config whose Redis URL (with its password) and header value the schema refuses; `validate` of it.
    const bad = JSON.parse(JSON.stringify({ ...gw.loaded.config, redis: { url: `http://:${REDIS_PASSWORD}@127.0.0.1:6379` } }));
    bad.routes[1].filters[0].requestHeaderModifier.set[0].value = `Basic ${REFUSED_BASIC}\n`;
    const badFile = gw.writeFile('bad.yaml', stringify(bad));
    validated = await portcullis(['validate', badFile]);
    const reloader = createReloader({ load: () => loadConfigFile(badFile), parts: [gw.gateway], initial: gw.loaded, logger: gw.logger, watchIntervalMs: 0 });
    reloadAnswer = await reloader.reload('test');
    reloader.close();

    const res = await fetch(`http://127.0.0.1:${adminPort}/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(res.status, 200);
    configDump = await res.text();
    // The failed JWKS fetch of `leaky` has been logged by now (it started with the gateway).
    await gw.gateway.runtime().jwt.ready();
  });

  after(async () => {
    await admin.close();
    await gw.close();
  });

  test('no secret in any log line, in /config or in the reload answer', () => {
    const keyBody = keyPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const secrets = [JWKS_PASSWORD, JWKS_QUERY_SECRET, REDIS_PASSWORD, COOKIE_SECRET, ADMIN_TOKEN, token, keyBody.slice(0, 40), UPSTREAM_BASIC, UPSTREAM_API_KEY, REFUSED_BASIC];
    const logs = gw.logs.map((l) => JSON.stringify(l));
    for (const [where, text] of [
      ['logs', logs.join('\n')],
      ['/config', configDump],
      ['reload answer', JSON.stringify(reloadAnswer)],
      ['validate output', validated.stdout + validated.stderr],
    ] as const) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `${where} shows ${secret.slice(0, 12)}…`);
    }
    // The events that used to carry them are there, with the secrets redacted.
    const fetchFailed = gw.logs.find((l) => l.event === 'JWKS_FETCH_FAILED' && l.provider === 'leaky');
    assert.match(String(fetchFailed?.uri), /^http:\/\/\[redacted\]@127\.0\.0\.1:\d+\/[^?]*\?api_key=\[redacted\]&tenant=\[redacted\]$/);
    assert.match(String(fetchFailed?.error), /\[redacted\]@/);
    const rejected = gw.logs.find((l) => l.event === 'CONFIG_REJECTED');
    assert.match(JSON.stringify(rejected?.issues), /http:\/\/\[redacted\]@127\.0\.0\.1:6379/);
    assert.match(configDump, /api_key=\[redacted\]/);
    // Header values: redacted by their name's meaning; the refused one is named, not quoted.
    const { set } = JSON.parse(configDump).routes[1].filters[0].requestHeaderModifier;
    assert.deepEqual(set.map((h: { value: string }) => h.value), ['[redacted]', '[redacted]', 't1']);
    const headerIssue = /\/routes\/1\/filters\/0\/requestHeaderModifier\/set\/0\/value: the value does not match/;
    assert.equal(validated.code, 1);
    assert.match(validated.stderr + validated.stdout, headerIssue);
    assert.match(JSON.stringify(rejected?.issues), /the value does not match/);
  });

  test('every line has an ISO-8601 time; the access line has user agent, SNI, TLS version and cipher, upstream address', () => {
    for (const line of gw.logs) assert.match(String(line.time), ISO_TIME);
    const access = gw.logs.find((l) => l.event === 'REQUEST' && l.status === 200)!;
    assert.equal(access.userAgent, 'secrets-test/1.0');
    assert.deepEqual(access.tls, { sni: 'localhost', version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    assert.equal(access.upstreamAddress, new URL(gw.upstream.url).host);
  });
});
