// The PKI's only file I/O: PEM files in, certificates and 0600 keys out.
import * as fs from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { requireCertificates } from './pem.js';
import type { CertKeyPem } from './types.js';

export const KEY_FILE_MODE = 0o600;
export const CERT_FILE_MODE = 0o644;
export const PRIVATE_DIR_MODE = 0o700;

export interface FileToWrite {
  path: string;
  data: string;
  mode: number;
}

/** A private key file: owner read/write only. */
export function keyFile(filePath: string, keyPem: string): FileToWrite {
  return { path: filePath, data: keyPem, mode: KEY_FILE_MODE };
}

export function certFile(filePath: string, certPem: string): FileToWrite {
  return { path: filePath, data: certPem, mode: CERT_FILE_MODE };
}

/**
 * Writes all files or none. Without `overwrite` an existing target is an error, checked for every file before the
 * first write and again atomically per file (O_EXCL), and files written by this call are removed if a later one
 * fails. The mode is passed to open(2), so a key is never readable by others, not even briefly.
 */
export function writeFiles(files: readonly FileToWrite[], { overwrite = false } = {}): void {
  if (!overwrite) {
    const existing = files.filter((f) => fs.existsSync(f.path)).map((f) => f.path);
    if (existing.length > 0) throw new Error(`refusing to overwrite ${existing.join(', ')} (pass --force to replace)`);
  }
  const written: string[] = [];
  try {
    for (const f of files) {
      fs.writeFileSync(f.path, f.data, { mode: f.mode, flag: overwrite ? 'w' : 'wx' });
      // open(2) applies the mode only when it creates the file; an overwritten file keeps its old mode otherwise.
      if (overwrite) fs.chmodSync(f.path, f.mode);
      written.push(f.path);
    }
  } catch (err) {
    if (!overwrite) for (const p of written) fs.rmSync(p, { force: true });
    throw err;
  }
}

/** Creates a directory (and parents) that only its owner can enter. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask and ignored for a directory that already exists.
  fs.chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Reads a PEM file, naming the file in the error. */
export function readPemFile(filePath: string): string {
  try {
    return fs.readFileSync(filePath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${filePath}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`}`);
  }
}

/** True when `keyPem` is the private key of the first certificate in `certPem` (checked by OpenSSL). */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  const cert = requireCertificates(certPem, 'certificate')[0]!;
  return cert.checkPrivateKey(createPrivateKey(keyPem));
}

/** Reads a certificate and its key, refusing a pair that does not belong together. */
export function readCertKeyPair(certPath: string, keyPath: string): CertKeyPem {
  const certPem = readPemFile(certPath);
  const keyPem = readPemFile(keyPath);
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(certPem, keyPem);
  } catch (err) {
    throw new Error(`${certPath} / ${keyPath}: ${(err as Error).message}`);
  }
  if (!matches) throw new Error(`${keyPath} is not the private key of ${certPath}`);
  return { certPem, keyPem };
}

/**
 * File names inside a PKI directory, shared by `certs init/issue` and the dev bootstrap. `ca.pem` is the root and
 * doubles as the trust bundle; `intermediate.pem`, when present, is the issuing CA.
 */
export const PKI_FILES = {
  caCert: 'ca.pem',
  caKey: 'ca-key.pem',
  intermediateCert: 'intermediate.pem',
  intermediateKey: 'intermediate-key.pem',
} as const;

/** `<prefix>.pem` (certificate chain) and `<prefix>-key.pem`. */
export function leafFileNames(prefix: string): { cert: string; key: string } {
  return { cert: `${prefix}.pem`, key: `${prefix}-key.pem` };
}
