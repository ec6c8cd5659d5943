// `portcullis certs init | issue | inspect`: a thin shell over issue.ts, inspect.ts and store.ts.
// Validation and key generation happen before the first write, so a refused command leaves no file behind.
// Private keys are written (0600) but never printed.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { caTrustDomain, createCa, DEFAULT_KEY_TYPE, issueCertificate } from './issue.js';
import { formatInspection, inspectCertificate } from './inspect.js';
import { parseSpiffeId, parseTrustDomain } from './spiffe-id.js';
import {
  PKI_FILES,
  certFile,
  ensurePrivateDir,
  keyFile,
  keyMatchesCertificate,
  leafFileNames,
  readCertKeyPair,
  readPemFile,
  writeFiles,
  type FileToWrite,
} from './store.js';
import { KEY_TYPES, type CertKeyPem, type KeyType } from './types.js';

export interface Output {
  write(chunk: string): unknown;
}

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Istio's default trust domain. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const USAGE = {
  certs: `Usage: portcullis certs <command> [options]

Commands:
  init          create a CA (root, optionally + intermediate) in a directory
  intermediate  create or rotate the intermediate CA, signed by the root
  issue         issue an X.509-SVID signed by that CA
  inspect       show a certificate and check it against a bundle

Run "portcullis certs <command> --help" for a command's options.
`,
  init: `Usage: portcullis certs init --dir DIR [--trust-domain TD] [--intermediate] [--key-type rsa|ec] [--force]

Creates DIR (mode 0700) with ca.pem (root CA, also the trust bundle) and ca-key.pem (0600). With
--intermediate, also intermediate.pem and intermediate-key.pem; certificates are then issued by the
intermediate. The CA carries the URI SAN spiffe://TD (default trust domain: ${DEFAULT_TRUST_DOMAIN}).
Keys default to RSA 2048 (rsa, signed by node-forge); ec is ECDSA P-256 (faster handshakes). Existing
files are kept unless --force.
`,
  intermediate: `Usage: portcullis certs intermediate --dir DIR [--key-type rsa|ec]

Creates, or replaces, intermediate.pem and intermediate-key.pem in DIR: a new intermediate CA (pathlen 0, one
year, the root's trust domain) signed by the root (ca.pem and ca-key.pem). Certificates issued before keep
chaining to the root through the intermediate their files carry. Once an intermediate exists, issue needs
only it, so ca-key.pem can be kept offline between rotations.
`,
  issue: `Usage: portcullis certs issue --dir DIR --spiffe-id spiffe://TD/PATH [--dns NAME]... [--ip ADDR]...
                              [--ttl 24h] [--out PREFIX] [--key-type rsa|ec] [--force]

Issues an X.509-SVID (one URI SAN, CA:false, serverAuth + clientAuth) signed by the CA in DIR (its
intermediate when there is one; the root's key is then not read), whose trust domain must be TD. Writes
PREFIX.pem (certificate, then any intermediate) and PREFIX-key.pem (0600). PREFIX defaults to
DIR/<path segments joined by '-'>. TTL units: s, m, h, d (default 24h); it may not run past the CA's expiry.
`,
  inspect: `Usage: portcullis certs inspect FILE [--bundle FILE] [--key FILE]

Prints subject, SANs, SPIFFE ID, issuer, validity, time left, serial and key type of the first
certificate in FILE. With --bundle, also whether FILE (certificate + intermediates) chains to a CA in
the bundle. With --key, whether that private key belongs to the certificate (exit 1 if not).
`,
} as const;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;
const FORCE = { force: { type: 'boolean' } } as const;
const KEY_TYPE = { 'key-type': { type: 'string' } } as const;

class UsageError extends Error {}

export async function runCertsCli(
  argv: string[],
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.write(USAGE.certs);
        return EXIT_OK;
      case 'init':
        return init(rest, out);
      case 'intermediate':
        return rotateIntermediate(rest, out);
      case 'issue':
        return issue(rest, out);
      case 'inspect':
        return inspect(rest, out, err);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}\n\n${USAGE.certs}`);
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    err.write(`portcullis certs: ${message}\n`);
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  }
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required\n\n${usage}`);
  return value;
}

function keyType(value: string | undefined): KeyType {
  if (value === undefined) return DEFAULT_KEY_TYPE;
  if (!(KEY_TYPES as readonly string[]).includes(value)) {
    throw new UsageError(`--key-type must be one of ${KEY_TYPES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as KeyType;
}

const TTL_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `24h`, `7d`. A hand-written grammar because no installed library parses durations. */
export function parseTtl(text: string): number {
  const match = /^([1-9][0-9]{0,8})([smhd])$/.exec(text);
  if (match === null) throw new UsageError(`--ttl must look like 90s, 30m, 24h or 7d, got ${JSON.stringify(text)}`);
  return Number(match[1]) * TTL_UNITS[match[2]!]!;
}

function init(args: string[], out: Output): number {
  const { values } = parse(args, {
    ...HELP,
    ...FORCE,
    ...KEY_TYPE,
    dir: { type: 'string' },
    'trust-domain': { type: 'string' },
    intermediate: { type: 'boolean' },
  });
  if (values.help) {
    out.write(USAGE.init);
    return EXIT_OK;
  }
  const dir = required(values.dir, '--dir', USAGE.init);
  const trustDomain = parseTrustDomain(values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN);
  const type = keyType(values['key-type']);
  const root = createCa({ commonName: `Portcullis Root CA (${trustDomain})`, trustDomain, keyType: type });
  const files: FileToWrite[] = [
    certFile(path.join(dir, PKI_FILES.caCert), root.certPem),
    keyFile(path.join(dir, PKI_FILES.caKey), root.keyPem),
  ];
  if (values.intermediate) files.push(...intermediateFiles(dir, root, trustDomain, type));
  ensurePrivateDir(dir);
  writeFiles(files, { overwrite: values.force === true });
  out.write(`trust domain: ${trustDomain}\n${files.map((f) => `wrote ${f.path}\n`).join('')}`);
  return EXIT_OK;
}

/** A new intermediate CA signed by `root`, as the two files to write. */
function intermediateFiles(dir: string, root: CertKeyPem, trustDomain: string, type: KeyType): FileToWrite[] {
  const intermediate = createCa({ commonName: `Portcullis Intermediate CA (${trustDomain})`, trustDomain, keyType: type, issuer: root });
  return [
    certFile(path.join(dir, PKI_FILES.intermediateCert), intermediate.certPem),
    keyFile(path.join(dir, PKI_FILES.intermediateKey), intermediate.keyPem),
  ];
}

/** `certs intermediate`: the one step that needs the root's key, so the root can stay offline otherwise. */
function rotateIntermediate(args: string[], out: Output): number {
  const { values } = parse(args, { ...HELP, ...KEY_TYPE, dir: { type: 'string' } });
  if (values.help) {
    out.write(USAGE.intermediate);
    return EXIT_OK;
  }
  const dir = required(values.dir, '--dir', USAGE.intermediate);
  const root = readCertKeyPair(path.join(dir, PKI_FILES.caCert), path.join(dir, PKI_FILES.caKey));
  const trustDomain = caTrustDomain(root.certPem);
  if (trustDomain === undefined) throw new Error(`${path.join(dir, PKI_FILES.caCert)} carries no spiffe://TD URI SAN`);
  const files = intermediateFiles(dir, root, trustDomain, keyType(values['key-type']));
  writeFiles(files, { overwrite: true });
  out.write(`trust domain: ${trustDomain}\n${files.map((f) => `wrote ${f.path}\n`).join('')}`);
  return EXIT_OK;
}

/**
 * The CA that signs leaves in `dir` and the chain to append to leaves: the intermediate when there is one (the root's
 * key is then never read, so it may be kept offline), else the root.
 */
function signingCa(dir: string): { ca: CertKeyPem; chainPem: string } {
  const intermediateCert = path.join(dir, PKI_FILES.intermediateCert);
  if (!existsSync(intermediateCert)) {
    return { ca: readCertKeyPair(path.join(dir, PKI_FILES.caCert), path.join(dir, PKI_FILES.caKey)), chainPem: '' };
  }
  const ca = readCertKeyPair(intermediateCert, path.join(dir, PKI_FILES.intermediateKey));
  return { ca, chainPem: ca.certPem };
}

function issue(args: string[], out: Output): number {
  const { values } = parse(args, {
    ...HELP,
    ...FORCE,
    ...KEY_TYPE,
    dir: { type: 'string' },
    'spiffe-id': { type: 'string' },
    dns: { type: 'string', multiple: true },
    ip: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    out: { type: 'string' },
  });
  if (values.help) {
    out.write(USAGE.issue);
    return EXIT_OK;
  }
  const dir = required(values.dir, '--dir', USAGE.issue);
  const spiffeId = required(values['spiffe-id'], '--spiffe-id', USAGE.issue);
  const { trustDomain, path: idPath } = parseSpiffeId(spiffeId);
  if (idPath === '') throw new Error(`${spiffeId} names a trust domain, not a workload`);
  const ttlMs = parseTtl(values.ttl ?? '24h');
  const type = keyType(values['key-type']);
  const { ca, chainPem } = signingCa(dir);
  const caDomain = caTrustDomain(ca.certPem);
  if (caDomain !== trustDomain) {
    throw new Error(`${spiffeId} is not in the CA's trust domain (${caDomain ?? 'none'})`);
  }
  const leaf = issueCertificate(ca, {
    spiffeId,
    dnsNames: values.dns ?? [],
    ipAddresses: values.ip ?? [],
    ttlMs,
    keyType: type,
  });
  const names = leafFileNames(values.out ?? path.join(dir, idPath.slice(1).replace(/\//g, '-')));
  writeFiles([certFile(names.cert, leaf.certPem + chainPem), keyFile(names.key, leaf.keyPem)], {
    overwrite: values.force === true,
  });
  out.write(
    `spiffe id: ${spiffeId}\nserial: ${leaf.serial}\nnot after: ${leaf.notAfter.toISOString()}\n` +
      `wrote ${names.cert}\nwrote ${names.key}\n`,
  );
  return EXIT_OK;
}

function inspect(args: string[], out: Output, err: Output): number {
  const { values, positionals } = parse(
    args,
    { ...HELP, bundle: { type: 'string' }, key: { type: 'string' } },
    true,
  );
  if (values.help) {
    out.write(USAGE.inspect);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError(`expected exactly one FILE\n\n${USAGE.inspect}`);
  const file = positionals[0]!;
  const pem = readPemFile(file);
  const info = inspectCertificate(pem, values.bundle === undefined ? undefined : readPemFile(values.bundle));
  out.write(formatInspection(info));
  if (values.key !== undefined) {
    const matches = keyMatchesCertificate(pem, readPemFile(values.key));
    out.write(`key matches certificate: ${matches ? 'yes' : 'no'}\n`);
    if (!matches) {
      err.write(`portcullis certs: ${values.key} is not the private key of ${file}\n`);
      return EXIT_FAILED;
    }
  }
  return info.chain?.ok === false ? EXIT_FAILED : EXIT_OK;
}
