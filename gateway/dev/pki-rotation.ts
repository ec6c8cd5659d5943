// Rotation by the embedded development CA: at the earliest renewal time of the gateway's own leaf
// certificates (half-life with jitter), the dev bootstrap re-issues what is due and rewrites the files;
// the gateway's file watcher then swaps them in like any external issuer's (cert-manager, SPIRE).
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { ensureDevPki, type DevPki } from '../../certs/dev-bootstrap.js';
import { renewalTime } from '../../certs/rotation.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';

/** setTimeout's ceiling is ~24.8 days; longer waits are taken in steps. */
const MAX_WAIT_MS = 24 * 3_600_000;

export interface DevRotationOptions {
  stateDir: string;
  trustDomain: string;
  hostnames: string[];
  logger: Logger;
  /** Called after files were rewritten (the demo backend reloads its own certificate here). */
  onRotated?(pki: DevPki): void;
}

export function scheduleDevRotation(options: DevRotationOptions): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const plan = (pki: DevPki) => {
    const due = Math.min(
      ...[pki.serverCert, pki.gatewaySvidCert, pki.backendCert].map((file) => {
        const cert = new X509Certificate(fs.readFileSync(file));
        return renewalTime(new Date(cert.validFrom), new Date(cert.validTo)).getTime();
      }),
    );
    timer = setTimeout(rotate, Math.min(Math.max(due - Date.now(), 1000), MAX_WAIT_MS));
    timer.unref();
  };
  const rotate = () => {
    try {
      const pki = ensureDevPki(options.stateDir, { trustDomain: options.trustDomain, hostnames: options.hostnames });
      if (pki.written.length > 0) {
        options.logger.info({ event: LOG_EVENTS.CERT_ROTATED, files: pki.written.filter((f) => !f.endsWith('-key.pem')) });
        options.onRotated?.(pki);
      }
      plan(pki);
    } catch (err) {
      options.logger.error({ event: LOG_EVENTS.CERT_ROTATED, err }, 'development certificate rotation failed; retrying in a minute');
      timer = setTimeout(rotate, 60_000);
      timer.unref();
    }
  };
  plan(ensureDevPki(options.stateDir, { trustDomain: options.trustDomain, hostnames: options.hostnames }));
  return { stop: () => clearTimeout(timer) };
}
