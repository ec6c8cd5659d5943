// What the development helpers of a config's `dev` section need: the sockets they bind (on 127.0.0.1) and the
// development PKI files they read. Kept apart from dev-mode.ts so the config checks can use it without loading the
// certificate builders a production gateway never needs.
import { join } from 'node:path';
import type { Config } from '../config/schema.js';

export const DEV_HELPERS_ADDRESS = '127.0.0.1';

export interface DevHelpersPlan {
  /** The demo backend: only with a mesh, whose bundle it trusts for client certificates. */
  backend?: { port: number; cert: string; key: string };
  issuer?: { port: number; signingKeyFile: string };
}

export function devHelpersPlan(config: Config, stateDir: string): DevHelpersPlan {
  const dev = config.dev;
  const pki = join(stateDir, 'pki');
  return {
    ...(dev?.demoBackendPort !== undefined && config.mesh
      ? { backend: { port: dev.demoBackendPort, cert: join(pki, 'demo-backend.pem'), key: join(pki, 'demo-backend-key.pem') } }
      : {}),
    ...(dev?.tokenIssuerPort !== undefined ? { issuer: { port: dev.tokenIssuerPort, signingKeyFile: join(pki, 'jwt-signing-key.json') } } : {}),
  };
}
