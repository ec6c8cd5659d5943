// The process-wide connection budget from the open-files limit: the real CLI under `ulimit -n 200` (budget 75), then
// a flood of idle TCP connections on the edge, three times what the budget allows. Without the budget the flood took
// every descriptor and the admin plane's health probe was reset; with it the probe, a client already connected and
// the metrics keep answering, the egress proxy (same budget) refuses new connections too, and the freed budget
// serves again.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { embeddedConfig, startCluster, type ClusterRun, type EmbeddedConfig } from '../../helpers/cluster.js';
import { request } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';

const OPEN_FILES = 200;
/** (200 − a quarter of 200 kept back) / 2 descriptors per proxied connection. */
const BUDGET = 75;
const FLOOD = 3 * BUDGET;

describe('the connection budget (ulimit -n 200)', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-budget-'));
  const configFile = path.join(stateDir, 'portcullis.yaml');
  let at: EmbeddedConfig;
  let run: ClusterRun;
  let primary: ChildProcess;

  before(async () => {
    at = await embeddedConfig(stateDir, { egress: true });
    fs.writeFileSync(configFile, stringify(at.config));
    run = await startCluster(configFile, stateDir, at, 1, ['run', '-c', configFile, '--state-dir', stateDir], OPEN_FILES);
    primary = run.primary;
  });
  after(() => {
    if (primary?.exitCode === null) primary.kill('SIGKILL');
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const connect = async (port: number) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    return socket;
  };
  const health = async () => (await fetch(`${at.admin}/healthz`)).status;
  const refusedCount = async () => {
    const text = await (await fetch(`${at.admin}/metrics`)).text();
    return Number(/^portcullis_connections_refused_total\{listener="edge",reason="connection_budget"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };

  test('is logged at start with the limit it comes from', () => {
    const line = run.logLines().find((l) => l.event === 'CONNECTION_BUDGET');
    assert.deepEqual([line?.openFilesLimit, line?.maxConnections, line?.level], [OPEN_FILES, BUDGET, 'warn']);
  });

  test('a flood past it leaves the admin plane, a connected client and the metrics answering', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: at.caPem });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: at.edge, servername: 'localhost', headers: { host: 'localhost' }, path: '/public/kept', agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
    assert.equal(await get(), 200, 'connected before the flood');
    const flood = await Promise.all(Array.from({ length: FLOOD }, () => connect(at.edge)));
    try {
      await until('the budget spent', async () => ((await refusedCount()) > 0 ? true : undefined), 10_000);
      assert.equal(await health(), 200, 'the health probe still answers');
      assert.equal(await get(), 200, 'the client connected before the flood is still served');
      const egress = await connect(at.config.egress!.listener.port);
      await once(egress, 'close');
      assert.equal(egress.bytesRead, 0, 'the egress proxy shares the budget: closed unanswered');
      const open = flood.filter((s) => !s.destroyed && s.readyState === 'open');
      assert.ok(open.length <= BUDGET, `${open.length} flood connections open, at most ${BUDGET}`);
      const refused = await refusedCount();
      assert.ok(refused >= FLOOD - BUDGET, `${refused} refusals counted`);
      const warned = run.logLines().filter((l) => l.event === 'CONNECTION_BUDGET' && l.listener);
      assert.ok(warned.length >= 1 && warned.length < refused / 10, `${warned.length} refusal lines for ${refused}: at most one a second`);
    } finally {
      for (const socket of flood) socket.destroy();
      agent.destroy();
    }
    const served = await until('the freed budget', async () => ((await request(at.edge, at.caPem, { path: '/public/after' }).catch(() => undefined))?.status === 200 ? true : undefined), 10_000);
    assert.equal(served, true);
  });
});
