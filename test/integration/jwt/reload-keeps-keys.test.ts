// Issue #11: a reload (a certificate rotation triggers one) during an issuer outage must not throw away the keys
// the gateway already has. A provider whose key source is configured the same way keeps its fetcher and keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { createReloader } from '../../../gateway/reload.js';
import { request, startTestIngress } from '../../helpers/ingress.js';

test('a reload during a JWKS outage keeps the last good keys of an unchanged provider', async () => {
  const ing = await startTestIngress();
  const reloader = createReloader({ load: () => loadConfigFile(ing.configFile), gateway: ing.gateway, initial: ing.loaded, logger: ing.logger, watchIntervalMs: 0 });
  const withToken = async () =>
    (await request(ing.port, ing.caPem, { path: '/api/orders', headers: { authorization: `Bearer ${await ing.jwks.sign({ sub: `u${Math.random()}` })}` } })).status;
  try {
    assert.equal(await withToken(), 200);
    const fetches = ing.jwks.hits;
    await ing.jwks.close();
    assert.deepEqual(reloader.reload('file_change'), { ok: true });
    // A token the new runtime has never seen: verified with the keys fetched before the outage.
    assert.equal(await withToken(), 200);
    assert.equal(ing.jwks.hits, fetches, 'the reload started no fetch of its own');
    assert.equal(ing.gateway.runtime().jwt.status().test?.state, 'fresh');
  } finally {
    reloader.close();
    await ing.close();
  }
});
