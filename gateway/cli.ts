#!/usr/bin/env node
// The `portcullis` command line: run, validate, token, certs. Argument parsing is node:util's parseArgs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCertsCli } from '../certs/cli.js';
import { ensureDevPki } from '../certs/dev-bootstrap.js';
import { createAdminServer } from './admin/server.js';
import { startGateway, type Gateway } from './app.js';
import { isGatewayWorker, parseWorkers, runPrimary, runWorker, workerNumber } from './cluster.js';
import { ConfigError, loadConfigFile, loadConfigText, type LoadedConfig } from './config/load.js';
import { DEFAULTS } from './config/defaults.js';
import { runValidate } from './config/validate-command.js';
import { createLogger, LOG_EVENTS, type Logger } from './core/log.js';
import { startEchoServer } from './dev/demo-backend.js';
import { scheduleDevRotation } from './dev/pki-rotation.js';
import { createReloader } from './reload.js';
import { mintDevToken, startDevTokenIssuer } from './dev/token-issuer.js';

const HELP = {
  main: `portcullis — zero-trust security gateway

Usage: portcullis <command> [options]

Commands:
  run       start the gateway (embedded development defaults when no -c is given)
  validate  check a config file and every policy file it names, then exit
  token     mint a development JWT for the embedded defaults' token issuer
  certs     the mesh PKI: init, issue, inspect (portcullis certs --help)

Run 'portcullis <command> --help' for a command's options.`,
  run: `Usage: portcullis run [-c CONFIG] [--state-dir DIR] [--workers N|auto]

Starts the gateway. With -c, the config file is validated first and the gateway refuses to start on
any error. Without -c, the embedded development config is used: a development CA, certificates, a
demo backend reached over mutual TLS and a token issuer are generated under the state folder
(default .portcullis/) on first start and reused after. Its ports (8443 edge, 3128 egress proxy,
9901 admin, 9444 demo backend, 9445 token issuer) move with PORTCULLIS_EDGE_PORT, PORTCULLIS_EGRESS_PORT,
PORTCULLIS_ADMIN_PORT, PORTCULLIS_DEMO_BACKEND_PORT and PORTCULLIS_TOKEN_ISSUER_PORT.

--workers N runs N gateway processes sharing the listening ports (auto: one per core; default 1, a single
process). In-memory rate limits hold for the whole machine; the admin plane aggregates their metrics.

Reloads: SIGHUP re-reads the config; an invalid one is refused and the running config stays.
Shutdown: SIGTERM/SIGINT stop accepting, finish in-flight requests, flush logs and exit 0.`,
  validate: `Usage: portcullis validate -c CONFIG

Validates the config and the policy files it includes against the schema and cross-references.
Prints every problem as file:line:column: /path: reason and exits 1, or prints a summary and exits 0.`,
  token: `Usage: portcullis token [--sub SUBJECT] [--claim NAME=VALUE]... [--ttl SECONDS] [--state-dir DIR]

Prints a development JWT signed by the embedded defaults' token issuer (state folder key).`,
};

const DEV_TRUST_DOMAIN = 'portcullis.dev';
const DEV_HOSTNAMES = ['localhost'];
const DEFAULT_CONFIG = fileURLToPath(new URL('./config/default.yaml', import.meta.url));

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'validate':
      return validate(rest);
    case 'token':
      return token(rest);
    case 'certs':
      return runCertsCli(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(HELP.main);
      return command === undefined ? 1 : 0;
    default:
      console.error(`unknown command: ${command}\n\n${HELP.main}`);
      return 1;
  }
}

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** The embedded config: generates (or reuses) the development PKI, then loads default.yaml over it. */
function loadDevConfig(stateDir: string): LoadedConfig {
  ensureDevPki(stateDir, { trustDomain: DEV_TRUST_DOMAIN, hostnames: DEV_HOSTNAMES });
  const vars: Record<string, string> = { STATE_DIR: stateDir };
  // Ports of the embedded config can be moved when 8443/9444/9445 are taken (and by the quickstart test).
  for (const name of ['EDGE_PORT', 'EGRESS_PORT', 'ADMIN_PORT', 'DEMO_BACKEND_PORT', 'TOKEN_ISSUER_PORT']) {
    const value = process.env[`PORTCULLIS_${name}`];
    if (value) vars[name] = value;
  }
  return loadConfigText(fs.readFileSync(DEFAULT_CONFIG, 'utf8'), DEFAULT_CONFIG, vars);
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...HELP_OPTION, config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string' }, workers: { type: 'string' } },
  });
  if (values.help) return help('run');
  let workers: number;
  try {
    workers = parseWorkers(values.workers);
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  }
  const configFile = values.config;
  const stateDir = path.resolve((values['state-dir']) ?? DEFAULTS.stateDir);
  const load = () => (configFile ? loadConfigFile(configFile) : loadDevConfig(stateDir));
  let loaded: LoadedConfig;
  try {
    loaded = load();
  } catch (err) {
    return reportConfigError(err);
  }
  const logger = createLogger(loaded.config.log?.level ?? DEFAULTS.logLevel);
  if (isGatewayWorker()) {
    const code = await runWorker({ load, initial: loaded, logger: logger.child({ worker: workerNumber(), pid: process.pid }) });
    logger.flush();
    return code;
  }
  const meshBundlePem = loaded.config.mesh ? fs.readFileSync(loaded.config.mesh.bundle, 'utf8') : undefined;
  const stopDev = await startDevHelpers(loaded, stateDir, logger);
  if (workers > 1) {
    const code = await runPrimary({
      workers,
      load,
      initial: loaded,
      logger,
      ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
      ...(configFile ? {} : { onListening: (ports: ReadonlyMap<string, number>) => printDevBanner(ports, stateDir, loaded) }),
    });
    await stopDev();
    logger.flush();
    return code;
  }
  let gateway: Gateway;
  try {
    gateway = await startGateway(loaded.config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'gateway failed to start');
    await stopDev();
    return 1;
  }
  if (!configFile) printDevBanner(gateway.ports, stateDir, loaded);
  const reloader = createReloader({
    load,
    gateway,
    initial: loaded,
    logger,
    watchIntervalMs: loaded.config.reload?.watchIntervalMs ?? DEFAULTS.watchIntervalMs,
  });
  process.on('SIGHUP', () => reloader.reload('sighup'));
  const admin = createAdminServer(loaded.config.admin, {
    logger,
    registry: gateway.metrics.registry,
    ready: () => gateway.ready(),
    reload: async () => reloader.reload('admin'),
    config: () => gateway.runtime().config,
    ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
  });
  await admin.listen();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  reloader.close();
  // The admin plane stays up while draining, so readiness reports 503 until the end.
  await gateway.close();
  await admin.close();
  await stopDev();
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  return 0;
}

async function startDevHelpers(loaded: LoadedConfig, stateDir: string, logger: Logger): Promise<() => Promise<void>> {
  const dev = loaded.config.dev;
  const stops: (() => Promise<void>)[] = [];
  if (dev?.demoBackendPort !== undefined && loaded.config.mesh) {
    const pki = path.join(stateDir, 'pki');
    const backend = await startEchoServer({
      certPem: fs.readFileSync(path.join(pki, 'demo-backend.pem'), 'utf8'),
      keyPem: fs.readFileSync(path.join(pki, 'demo-backend-key.pem'), 'utf8'),
      caPem: fs.readFileSync(loaded.config.mesh.bundle, 'utf8'),
      port: dev.demoBackendPort,
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
  if (dev?.tokenIssuerPort !== undefined) {
    const issuer = await startDevTokenIssuer({
      port: dev.tokenIssuerPort,
      signingKeyFile: path.join(stateDir, 'pki', 'jwt-signing-key.json'),
    });
    logger.info({ event: LOG_EVENTS.LISTENING, listener: 'dev-token-issuer', url: issuer.url });
    stops.push(issuer.close);
  }
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}

function printDevBanner(ports: ReadonlyMap<string, number>, stateDir: string, loaded: LoadedConfig): void {
  const port = [...ports.values()][0];
  const ca = loaded.config.mesh?.bundle ?? path.join(stateDir, 'pki', 'ca.pem');
  process.stderr.write(
    `\nPortcullis is running on the embedded development config (never use it in production).\n` +
      `  trust the dev CA:   curl --cacert ${path.relative(process.cwd(), ca)} https://localhost:${port}/public/hello\n` +
      `  get a dev token:    TOKEN=$(npm run --silent token)\n` +
      `  call the API:       curl --cacert ${path.relative(process.cwd(), ca)} -H "Authorization: Bearer $TOKEN" https://localhost:${port}/api/orders\n\n`,
  );
}

async function validate(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...HELP_OPTION, config: { type: 'string', short: 'c' } } });
  if (values.help) return help('validate');
  if (!values.config) {
    console.error(`validate needs -c CONFIG\n\n${HELP.validate}`);
    return 1;
  }
  return runValidate(values.config, process.stdout, process.stderr);
}

async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
    ...HELP_OPTION,
    sub: { type: 'string' },
    claim: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    'state-dir': { type: 'string' },
    },
  });
  if (values.help) return help('token');
  const stateDir = path.resolve((values['state-dir']) ?? DEFAULTS.stateDir);
  let loaded: LoadedConfig;
  try {
    loaded = loadDevConfig(stateDir);
  } catch (err) {
    return reportConfigError(err);
  }
  const provider = loaded.config.jwtProviders?.[0];
  if (!provider) throw new Error('the embedded config has no token provider');
  const claims: Record<string, string> = {};
  for (const pair of values.claim ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) {
      console.error(`--claim takes NAME=VALUE, got ${pair}`);
      return 1;
    }
    claims[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const jwt = await mintDevToken(path.join(stateDir, 'pki', 'jwt-signing-key.json'), {
    issuer: provider.issuer,
    ...(values.sub ? { subject: values.sub } : {}),
    ...(provider.audiences?.[0] ? { audience: provider.audiences[0] } : {}),
    ...(values.ttl ? { ttlSeconds: Number(values.ttl) } : {}),
    claims,
  });
  process.stdout.write(`${jwt}\n`);
  return 0;
}

function help(command: keyof typeof HELP): number {
  console.log(HELP[command]);
  return 0;
}

function reportConfigError(err: unknown): number {
  console.error(err instanceof ConfigError ? `invalid configuration:\n${err.message}` : `error: ${(err as Error).message}`);
  return 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`error: ${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}
