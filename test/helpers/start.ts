// Starts what `portcullis run` starts for a config (the gateway and its admin plane), then stops both: for tests
// that only need to know that a config starts. No JWKS is fetched from outside the machine.
import { readFileSync } from 'node:fs';
import { createAdminServer } from '../../gateway/admin/server.js';
import { startGateway } from '../../gateway/app.js';
import type { Config } from '../../gateway/config/schema.js';
import { createLogger } from '../../gateway/core/log.js';

export async function startAndStop(config: Config): Promise<void> {
  const logger = createLogger('silent');
  const gateway = await startGateway(config, { logger, fetch: () => Promise.reject(new Error('no network in tests')) });
  try {
    const admin = createAdminServer(config.admin, {
      logger,
      registry: gateway.metrics.registry,
      ready: () => gateway.ready(),
      reload: () => Promise.resolve({ ok: true }),
      config: () => config,
      ...(config.mesh ? { meshBundlePem: readFileSync(config.mesh.bundle, 'utf8'), meshRevoked: config.mesh.revoked } : {}),
    });
    await admin.listen();
    await admin.close();
  } finally {
    await gateway.close(0);
  }
}

/** The same config with every socket on port 0: tests may not depend on fixed ports being free. */
export function onFreePorts(config: Config): Config {
  const copy = structuredClone(config);
  for (const l of copy.listeners) l.port = 0;
  copy.admin = { ...copy.admin, port: 0 };
  if (copy.egress) copy.egress.listener.port = 0;
  return copy;
}
