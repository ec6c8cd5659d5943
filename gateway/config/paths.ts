// Which config fields name files, and whether those files can be read.
import { accessSync, constants, statSync } from 'node:fs';
import { headerWrites } from './route-traffic-schema.js';
import { certificateList, type Config } from './schema.js';

/**
 * Rewrites every file path in `config` through `named`: the one list of which fields are files. Outputs (the
 * state dir the dev bootstrap creates, the egress audit log) are resolved but need not exist yet.
 */
export function resolvePaths(config: Config, named: (pointer: string, path: string, mustExist: boolean) => string): void {
  if (config.stateDir !== undefined) config.stateDir = named('/stateDir', config.stateDir, false);
  if (config.mesh) {
    config.mesh.svid.cert = named('/mesh/svid/cert', config.mesh.svid.cert, true);
    config.mesh.svid.key = named('/mesh/svid/key', config.mesh.svid.key, true);
    config.mesh.bundle = named('/mesh/bundle', config.mesh.bundle, true);
    config.mesh.federatedBundles?.forEach((f, i) => {
      f.bundle = named(`/mesh/federatedBundles/${i}/bundle`, f.bundle, true);
    });
  }
  config.listeners.forEach((l, i) =>
    l.hosts.forEach((h, j) => {
      if (h.tls.mode !== 'terminate') return;
      const at = `/listeners/${i}/hosts/${j}/tls`;
      const list = Array.isArray(h.tls.certificate);
      certificateList(h.tls.certificate).forEach((c, k) => {
        const where = list ? `${at}/certificate/${k}` : `${at}/certificate`;
        c.cert = named(`${where}/cert`, c.cert, true);
        c.key = named(`${where}/key`, c.key, true);
      });
      if (h.tls.clientCa !== undefined) h.tls.clientCa = named(`${at}/clientCa`, h.tls.clientCa, true);
    }),
  );
  config.jwtProviders?.forEach((p, i) => {
    if (p.jwksFile !== undefined) p.jwksFile = named(`/jwtProviders/${i}/jwksFile`, p.jwksFile, true);
  });
  config.routes.forEach((r, i) => {
    for (const { write, pointer } of headerWrites(r.filters, `/routes/${i}`)) {
      if (write.valueFile !== undefined) write.valueFile = named(`${pointer}/valueFile`, write.valueFile, true);
    }
  });
  config.upstreams.forEach((u, i) => {
    if (u.tls?.ca !== undefined) u.tls.ca = named(`/upstreams/${i}/tls/ca`, u.tls.ca, true);
  });
  if (config.policyFiles) config.policyFiles = config.policyFiles.map((f, i) => named(`/policyFiles/${i}`, f, true));
  const egressTls = config.egress?.listener.tls;
  if (egressTls) {
    egressTls.certificate.cert = named('/egress/listener/tls/certificate/cert', egressTls.certificate.cert, true);
    egressTls.certificate.key = named('/egress/listener/tls/certificate/key', egressTls.certificate.key, true);
    if (egressTls.clientCa !== undefined) egressTls.clientCa = named('/egress/listener/tls/clientCa', egressTls.clientCa, true);
  }
  config.egress?.originate?.forEach((o, i) => {
    if (o.tls.ca !== undefined) o.tls.ca = named(`/egress/originate/${i}/tls/ca`, o.tls.ca, true);
  });
  const audit = config.egress?.audit;
  if (audit?.file !== undefined) audit.file = named('/egress/audit/file', audit.file, false);
  const trail = config.audit;
  if (trail) {
    trail.file = named('/audit/file', trail.file, false);
    if (trail.checkpoints) {
      trail.checkpoints.file = named('/audit/checkpoints/file', trail.checkpoints.file, false);
      trail.checkpoints.keyFile = named('/audit/checkpoints/keyFile', trail.checkpoints.keyFile, true);
    }
  }
  const admin = config.admin;
  if (admin?.tokenFile !== undefined) admin.tokenFile = named('/admin/tokenFile', admin.tokenFile, true);
  if (admin?.tls) {
    admin.tls.certificate.cert = named('/admin/tls/certificate/cert', admin.tls.certificate.cert, true);
    admin.tls.certificate.key = named('/admin/tls/certificate/key', admin.tls.certificate.key, true);
    if (admin.tls.clientCa !== undefined) admin.tls.clientCa = named('/admin/tls/clientCa', admin.tls.clientCa, true);
  }
}

export function unreadable(abs: string): string | undefined {
  try {
    if (!statSync(abs).isFile()) return 'not a regular file';
    accessSync(abs, constants.R_OK);
    return undefined;
  } catch (err) {
    return fsReason(err);
  }
}

export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'not a regular file';
  return err instanceof Error ? err.message : String(err);
}

