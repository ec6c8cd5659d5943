// The zero-setup development mode: the embedded config over a generated development PKI, the demo
// backend and token issuer it points at, and the banner that tells a user what to run. Loaded only when
// the gateway runs without a config file (or for `portcullis token`), so node-forge and the certificate
// builders stay out of a production gateway's memory.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDevPki } from '../../certs/dev-bootstrap.js';
import { loadConfigText, type LoadedConfig } from '../config/load.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import { startEchoServer } from './demo-backend.js';
import { DEV_HELPERS_ADDRESS, devHelpersPlan } from './helpers-plan.js';
import { scheduleDevRotation } from './pki-rotation.js';
import { mintDevToken, startDevTokenIssuer } from './token-issuer.js';

export { mintDevToken };

const DEV_TRUST_DOMAIN = 'portcullis.dev';
const DEV_HOSTNAMES = ['localhost'];
const DEFAULT_CONFIG = fileURLToPath(new URL('../config/default.yaml', import.meta.url));

/** The embedded config: generates (or reuses) the development PKI, then loads default.yaml over it. */
export function loadDevConfig(stateDir: string): LoadedConfig {
  ensureDevPki(stateDir, { trustDomain: DEV_TRUST_DOMAIN, hostnames: DEV_HOSTNAMES });
  const vars: Record<string, string> = { STATE_DIR: stateDir };
  // Ports of the embedded config can be moved when 8443/9444/9445 are taken (and by the quickstart test).
  for (const name of ['EDGE_PORT', 'EGRESS_PORT', 'ADMIN_PORT', 'DEMO_BACKEND_PORT', 'TOKEN_ISSUER_PORT']) {
    const value = process.env[`PORTCULLIS_${name}`];
    if (value) vars[name] = value;
  }
  return loadConfigText(fs.readFileSync(DEFAULT_CONFIG, 'utf8'), DEFAULT_CONFIG, vars);
}

export async function startDevHelpers(loaded: LoadedConfig, stateDir: string, logger: Logger): Promise<() => Promise<void>> {
  const plan = devHelpersPlan(loaded.config, stateDir);
  const stops: (() => Promise<void>)[] = [];
  if (plan.backend && loaded.config.mesh) {
    const backend = await startEchoServer({
      certPem: fs.readFileSync(plan.backend.cert, 'utf8'),
      keyPem: fs.readFileSync(plan.backend.key, 'utf8'),
      caPem: fs.readFileSync(loaded.config.mesh.bundle, 'utf8'),
      port: plan.backend.port,
      host: DEV_HELPERS_ADDRESS,
    });
    logger.info({ event: LOG_EVENTS.LISTENING, listener: 'dev-demo-backend', port: backend.port });
    stops.push(backend.close);
    const rotation = scheduleDevRotation({
      stateDir,
      trustDomain: DEV_TRUST_DOMAIN,
      hostnames: DEV_HOSTNAMES,
      logger,
      onRotated: (pki) => backend.setCertificate(fs.readFileSync(pki.backendCert, 'utf8'), fs.readFileSync(pki.backendKey, 'utf8')),
    });
    stops.push(async () => rotation.stop());
  }
  if (plan.issuer) {
    const issuer = await startDevTokenIssuer({ port: plan.issuer.port, host: DEV_HELPERS_ADDRESS, signingKeyFile: plan.issuer.signingKeyFile });
    logger.info({ event: LOG_EVENTS.LISTENING, listener: 'dev-token-issuer', url: issuer.url });
    stops.push(issuer.close);
  }
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}

/** What a user runs next, printed once the listeners are up. */
export function printDevBanner(ports: ReadonlyMap<string, number>, stateDir: string, loaded: LoadedConfig): void {
  const port = [...ports.values()][0];
  const ca = loaded.config.mesh?.bundle ?? path.join(stateDir, 'pki', 'ca.pem');
  process.stderr.write(
    `\nPortcullis is running on the embedded development config (never use it in production).\n` +
      `  trust the dev CA:   curl --cacert ${path.relative(process.cwd(), ca)} https://localhost:${port}/public/hello\n` +
      `  get a dev token:    TOKEN=$(npm run --silent token)\n` +
      `  call the API:       curl --cacert ${path.relative(process.cwd(), ca)} -H "Authorization: Bearer $TOKEN" https://localhost:${port}/api/orders\n\n`,
  );
}
