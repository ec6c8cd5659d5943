#!/usr/bin/env node
// The `portcullis` command line: run, validate, token, certs. Argument parsing is node:util's parseArgs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createAdminServer } from './admin/server.js';
import { startGateway, type Gateway } from './app.js';
import { isGatewayWorker, parseWorkers, runPrimary, runWorker, workerNumber } from './cluster.js';
import { ConfigError, loadConfigFile, type LoadedConfig } from './config/load.js';
import { DEFAULTS } from './config/defaults.js';
import { runValidate } from './config/validate-command.js';
import { createLogger } from './core/log.js';
import { createReloadMetrics } from './core/metrics.js';
import { createReloader } from './reload.js';

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

/** Development mode is imported on demand: see dev/dev-mode.ts. */
const devMode = () => import('./dev/dev-mode.js');

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
      return (await import('../certs/cli.js')).runCertsCli(rest);
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
  const dev = configFile ? undefined : await devMode();
  const load = () => (dev ? dev.loadDevConfig(stateDir) : loadConfigFile(configFile!));
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
  const stopDev = loaded.config.dev ? await (dev ?? (await devMode())).startDevHelpers(loaded, stateDir, logger) : async () => {};
  if (workers > 1) {
    const code = await runPrimary({
      workers,
      load,
      initial: loaded,
      logger,
      ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
      ...(dev ? { onListening: (ports: ReadonlyMap<string, number>) => dev.printDevBanner(ports, stateDir, loaded) } : {}),
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
  if (dev) dev.printDevBanner(gateway.ports, stateDir, loaded);
  const admin = createAdminServer(loaded.config.admin, {
    logger,
    registry: gateway.metrics.registry,
    ready: () => gateway.ready(),
    reload: () => reloader.reload('admin'),
    config: () => gateway.runtime().config,
    configHash: () => reloader.hash(),
    ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
  });
  const reloader = createReloader({
    load,
    parts: [gateway, admin],
    initial: loaded,
    logger,
    metrics: createReloadMetrics(gateway.metrics.registry),
    watchIntervalMs: loaded.config.reload?.watchIntervalMs ?? DEFAULTS.watchIntervalMs,
  });
  process.on('SIGHUP', () => void reloader.reload('sighup'));
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
  const dev = await devMode();
  let loaded: LoadedConfig;
  try {
    loaded = dev.loadDevConfig(stateDir);
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
  const jwt = await dev.mintDevToken(path.join(stateDir, 'pki', 'jwt-signing-key.json'), {
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
