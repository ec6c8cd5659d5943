#!/usr/bin/env node
// The `portcullis` command line: run, validate, token, certs. Argument parsing is node:util's parseArgs.
// First: `run` may re-execute itself with its V8 heap flags, before anything else loads (heap-flags.ts).
import './heap-flags.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createAdminServer } from './admin/server.js';
import { startGateway, type Gateway } from './app.js';
import { isGatewayWorker, parseWorkers, runPrimary, runWorker, workerNumber } from './cluster.js';
import { ConfigError, loadConfigFile, type LoadedConfig } from './config/load.js';
import { DEFAULTS } from './config/defaults.js';
import { runValidate } from './config/validate-command.js';
import { createLogger, LOG_EVENTS } from './core/log.js';
import { createReloadMetrics } from './core/metrics.js';
import { installProcessGuard } from './core/process-guard.js';
import { redactUrls } from './core/secrets.js';
import { ExplainInputError } from './ingress/explain.js';
import { createReloader } from './reload.js';
import { upstreamStatus } from './ingress/runtime.js';

const HELP = {
  main: `portcullis — zero-trust security gateway

Usage: portcullis <command> [options]
       portcullis --version

Commands:
  run       start the gateway (embedded development defaults when no -c is given)
  validate  check a config file and every policy file it names, then exit
  token     mint a development JWT for the embedded defaults' token issuer
  explain   show how the gateway decides one request, step by step
  test      check request → decision cases against a config (policy tests for CI)
  lint      find policies that grant more than they should
  suggest   propose the tightest ALLOW policies and egress rules from logs
  certs     the mesh PKI: init, issue, inspect (portcullis certs --help)
  audit     verify the tamper-evident audit trail (portcullis audit --help)

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
  validate: `Usage: portcullis validate CONFIG
       portcullis validate -c CONFIG

Checks the config and the policy files it includes exactly as 'run' does before it starts: the schema,
cross-references, the files it names (certificates match their keys, bundles are PEM, JWKS files have a
key for the provider's algorithms, the admin token) and port collisions.
Prints every problem as file:line:column: /path: reason and exits 1, or prints a summary and exits 0.`,
  explain: `Usage: portcullis explain [-c CONFIG] [--json] --url URL [--method M] [-H 'name: value']...
                         [--token JWT | --claims JSON] [--peer SPIFFE_ID] [--source-ip IP] [--listener L] [--sni NAME]
       portcullis explain [-c CONFIG] [--json] -f REQUEST.yaml
       portcullis explain [-c CONFIG] [--json] --egress --identity ID --host HOST [--port PORT]

Runs one request through the gateway's own stages without sockets and prints each step: virtual host,
normalized path, route, authentication, every policy considered with each field matched or failed, the
decision, the headers forwarded, and for a refusal the smallest change that would allow it.
URL is https://host[:port]/path?query (the path exactly as sent; it is not normalized here). --token is
verified against the config's JWT providers (JWKS fetched as the gateway does); --claims are taken as
given and marked "not verified". Without -c the embedded development config is used (--state-dir DIR).
Exits 0 when the request would be forwarded (egress: allowed), 1 when refused or the config is invalid.`,
  test: `Usage: portcullis test [-c CONFIG] [--format text|tap|junit] CASES.yaml...

Runs each case (a request and the decision expected for it) through the same stages as 'explain' and
compares: decision (forward|refuse; egress allow|deny), status, code, reason, route, policy, rule, and
headers (name: value forwarded, name: null not forwarded). Without -c the embedded development config is
used (--state-dir DIR). Exits 0 when every case passes, 1 on a mismatch (each shown as expected/got) or an
invalid config, 2 for a malformed case file.`,
  lint: `Usage: portcullis lint [-c CONFIG] [--fail-on warning|error] [--max-dry-run-days N] [--json]

Reports policies and egress rules that grant more than they should, each with a stable id, a severity
(info, warning, error) and a fix (docs/policies.md, "Lint findings"). 'validate' is about correctness;
'lint' is about least privilege. Without -c the embedded development config is used (--state-dir DIR).
--max-dry-run-days (default 14): a dry-run whose dryRunSince is older is reported (dry-run-too-long).
Exits 1 when a finding is at least as severe as --fail-on (default error), else 0.`,
  suggest: `Usage: portcullis suggest [-c CONFIG] --from LOG [--from LOG]...

Reads JSON-lines logs: the access log (event REQUEST), the egress audit (egress.audit.file, or the audit
trail; event EGRESS_DECISION) and dry-run would-denies (DRY_RUN_WOULD_DENY), each line by its event.
From access-log lines it prints a policy file with, per route, the tightest ALLOW policy that still allows
every request the log shows allowed: the callers seen (peer SPIFFE ID, else token principal), the methods
and the paths used (ID-like segments as {*}). From egress records it prints, as a second YAML document,
one egress allow rule per identity: the hosts and ports reached and, from CONNECT tunnels, a byte budget
(p99 x 2, in dry-run). Comments at the top list current rules that allowed nothing, dry-run rules and what
they let through, and what each dry-run enforcement point would have denied. The access log carries no
claims, so no 'when' conditions are suggested. Without -c the embedded development config is used
(--state-dir DIR).`,
  token: `Usage: portcullis token [--sub SUBJECT] [--claim NAME=VALUE]... [--ttl SECONDS] [--state-dir DIR]

Prints a development JWT signed by the embedded defaults' token issuer (state folder key).`,
};

const EMBEDDED_CONFIG = 'the embedded development config';

/** Development mode is imported on demand: see dev/dev-mode.ts. */
const devMode = () => import('./dev/dev-mode.js');

/** Exit codes: 1 for a config or start-up failure, 2 for a command line that is not understood (as getopt tools do). */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** A command line we do not understand: answered with the usage and exit code 2, never a stack trace. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`portcullis: ${err.message}\n\n${err.usage}`);
    return EXIT_USAGE;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'validate':
      return validate(rest);
    case 'token':
      return token(rest);
    case 'explain':
      return explain(rest);
    case 'test':
      return testCases(rest);
    case 'lint':
      return lint(rest);
    case 'suggest':
      return suggestPolicies(rest);
    case 'certs':
      return (await import('../certs/cli.js')).runCertsCli(rest);
    case 'audit':
      return (await import('./audit/verify-command.js')).runAuditCommand(rest, { out: console.log, err: console.error });
    case '-v':
    case '--version':
      console.log(version());
      return 0;
    case undefined:
      console.error(HELP.main);
      return EXIT_USAGE;
    case '-h':
    case '--help':
    case 'help':
      console.log(HELP.main);
      return 0;
    default:
      throw new UsageError(`unknown command: ${command}`, HELP.main);
  }
}

/** The package version, from the package.json above this file (the source tree or dist/). */
function version(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/** node:util's parseArgs, strict: an unknown option or one missing its value is a UsageError. */
function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, command: keyof typeof HELP, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...HELP_OPTION, ...options }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, HELP[command]);
  }
}

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

async function run(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, { config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string' }, workers: { type: 'string' } }, 'run');
  if (values.help) return help('run');
  let workers: number;
  try {
    workers = parseWorkers(values.workers);
  } catch (err) {
    throw new UsageError((err as Error).message, HELP.run);
  }
  const configFile = values.config;
  const flagStateDir = path.resolve(values['state-dir'] ?? DEFAULTS.stateDir);
  const dev = configFile ? undefined : await devMode();
  const load = () => (dev ? dev.loadDevConfig(flagStateDir) : loadConfigFile(configFile!));
  const configName = configFile ?? EMBEDDED_CONFIG;
  let loaded: LoadedConfig;
  try {
    loaded = load();
  } catch (err) {
    return reportConfigError(configName, err);
  }
  // --state-dir wins; else the config's stateDir (already absolute), else the default.
  const stateDir = values['state-dir'] === undefined ? (loaded.config.stateDir ?? flagStateDir) : flagStateDir;
  const logger = createLogger(loaded.config.log?.level ?? DEFAULTS.logLevel);
  if (isGatewayWorker()) {
    const code = await runWorker({ load, initial: loaded, logger: logger.child({ worker: workerNumber(), pid: process.pid }) });
    logger.flush();
    return code;
  }
  const meshBundlePem = loaded.config.mesh ? fs.readFileSync(loaded.config.mesh.bundle, 'utf8') : undefined;
  const meshRevoked = loaded.config.mesh?.revoked;
  let stopDev = async () => {};
  try {
    if (loaded.config.dev) stopDev = await (dev ?? (await devMode())).startDevHelpers(loaded, stateDir, logger);
  } catch (err) {
    return reportStartFailure(configName, 'development helpers', err);
  }
  if (workers > 1) {
    const code = await runPrimary({
      failStart: (what, err) => reportStartFailure(configName, what, err),
      workers,
      load,
      initial: loaded,
      logger,
      ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
      ...(meshRevoked !== undefined ? { meshRevoked } : {}),
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
    await stopDev();
    return reportStartFailure(configName, 'gateway', err);
  }
  installProcessGuard(logger, gateway.metrics);
  if (dev) dev.printDevBanner(gateway.ports, stateDir, loaded);
  const admin = createAdminServer(loaded.config.admin, {
    logger,
    registry: gateway.metrics.registry,
    ready: () => gateway.ready(),
    reload: () => reloader.reload('admin'),
    config: () => gateway.runtime().config,
    upstreams: () => upstreamStatus(gateway.runtime()),
    configHash: () => reloader.hash(),
    ...(meshBundlePem !== undefined ? { meshBundlePem } : {}),
    ...(meshRevoked !== undefined ? { meshRevoked } : {}),
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
  try {
    await admin.listen();
  } catch (err) {
    // Without its admin plane the gateway has no readiness probe and no drain: it must not serve.
    reloader.close();
    await gateway.close(0);
    await stopDev();
    return reportStartFailure(configName, 'admin plane', err);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  reloader.close();
  const drainMs = gateway.runtime().config.shutdown?.drainMs ?? DEFAULTS.drainMs;
  // gateway.close() cuts whatever the drain leaves; should anything still hang on, the process ends anyway.
  const watchdog = setTimeout(() => {
    logger.error({ event: LOG_EVENTS.SHUTDOWN, drainMs }, 'shutdown did not finish after the drain; exiting');
    logger.flush();
    process.exit(1);
  }, drainMs + SHUTDOWN_GRACE_MS);
  // The admin plane stays up while draining, so readiness reports 503 until the end.
  await gateway.close(drainMs);
  await admin.close();
  await stopDev();
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  clearTimeout(watchdog);
  return 0;
}

/** How long closing may take past the drain (pools, admin plane, log flush) before the process just exits. */
const SHUTDOWN_GRACE_MS = 1_000;

async function validate(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, { config: { type: 'string', short: 'c' } }, 'validate', true);
  if (values.help) return help('validate');
  const files = [...(values.config !== undefined ? [values.config] : []), ...positionals];
  if (files.length !== 1) throw new UsageError(files.length === 0 ? 'validate needs a CONFIG file' : 'validate takes one CONFIG file', HELP.validate);
  return runValidate(files[0]!, process.stdout, process.stderr);
}

async function explain(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    {
      config: { type: 'string', short: 'c' },
      'state-dir': { type: 'string' },
      json: { type: 'boolean' },
      file: { type: 'string', short: 'f' },
      method: { type: 'string', short: 'X' },
      url: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      token: { type: 'string' },
      claims: { type: 'string' },
      peer: { type: 'string' },
      'source-ip': { type: 'string' },
      listener: { type: 'string' },
      sni: { type: 'string' },
      egress: { type: 'boolean' },
      identity: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
    },
    'explain',
  );
  if (values.help) return help('explain');
  const tools = await import('./tools/explain-command.js');
  const spec = await inputErrorsAsUsage('explain', () => tools.requestFromFlags(values));
  const loaded = await loadForTool(values.config, values['state-dir']);
  if (typeof loaded === 'number') return loaded;
  return inputErrorsAsUsage('explain', () => tools.runExplain(loaded, spec, values.json === true, process.stdout));
}

/** A request or case file the policy tools cannot use is the caller's mistake: usage, exit 2. */
async function inputErrorsAsUsage<T>(command: keyof typeof HELP, work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ExplainInputError) throw new UsageError(err.message, HELP[command]);
    throw err;
  }
}

async function testCases(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    { config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string' }, format: { type: 'string' } },
    'test',
    true,
  );
  if (values.help) return help('test');
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'tap' && format !== 'junit') throw new UsageError(`--format is text, tap or junit, not ${format}`, HELP.test);
  if (positionals.length === 0) throw new UsageError('test needs at least one CASES file', HELP.test);
  const tools = await import('./tools/test-command.js');
  const cases = await inputErrorsAsUsage('test', () => tools.readCases(positionals));
  const loaded = await loadForTool(values.config, values['state-dir']);
  if (typeof loaded === 'number') return loaded;
  const results = await inputErrorsAsUsage('test', () => tools.runCases(loaded, cases));
  process.stdout.write(tools.formatResults(results, format));
  return results.some((r) => r.diffs.length > 0) ? EXIT_FAILED : 0;
}

async function lint(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    {
      config: { type: 'string', short: 'c' },
      'state-dir': { type: 'string' },
      'fail-on': { type: 'string' },
      'max-dry-run-days': { type: 'string' },
      json: { type: 'boolean' },
    },
    'lint',
  );
  if (values.help) return help('lint');
  const failOn = values['fail-on'] ?? 'error';
  if (failOn !== 'warning' && failOn !== 'error') throw new UsageError(`--fail-on is warning or error, not ${failOn}`, HELP.lint);
  const maxDryRunDays = values['max-dry-run-days'] === undefined ? undefined : Number(values['max-dry-run-days']);
  if (maxDryRunDays !== undefined && !(Number.isInteger(maxDryRunDays) && maxDryRunDays >= 0)) {
    throw new UsageError(`--max-dry-run-days is a whole number of days, not ${values['max-dry-run-days']}`, HELP.lint);
  }
  const { atLeast, lintConfig } = await import('./tools/lint.js');
  const loaded = await loadForTool(values.config, values['state-dir']);
  if (typeof loaded === 'number') return loaded;
  const findings = lintConfig(loaded.config, maxDryRunDays === undefined ? {} : { maxDryRunDays });
  if (values.json) process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else {
    for (const f of findings) process.stdout.write(`${f.severity.padEnd(7)} ${f.id} ${f.at}: ${f.message}\n        fix: ${f.fix}\n`);
    process.stdout.write(`${findings.length} finding${findings.length === 1 ? '' : 's'}\n`);
  }
  return findings.some((f) => atLeast(f.severity, failOn)) ? EXIT_FAILED : 0;
}

async function suggestPolicies(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, { config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string' }, from: { type: 'string', multiple: true } }, 'suggest');
  if (values.help) return help('suggest');
  if (!values.from?.length) throw new UsageError('suggest needs --from ACCESS_LOG or --from EGRESS_AUDIT', HELP.suggest);
  const { readRecords, reportWouldDenies, suggest } = await import('./tools/suggest.js');
  const { suggestEgress } = await import('./tools/suggest-egress.js');
  const records = await inputErrorsAsUsage('suggest', () =>
    values.from!.map((file) => {
      try {
        return readRecords(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new ExplainInputError(`cannot read ${file}: ${(err as Error).message}`);
      }
    }),
  );
  const loaded = await loadForTool(values.config, values['state-dir']);
  if (typeof loaded === 'number') return loaded;
  const requests = records.flatMap((r) => r.requests);
  const attempts = records.flatMap((r) => r.egress);
  const wouldDeny = reportWouldDenies(records.flatMap((r) => r.wouldDeny));
  const { stringify } = await import('yaml');
  const comments = (lines: readonly string[]) => lines.map((line) => `# ${line}\n`).join('');
  const documents: string[] = [];
  // The policy file when the logs had ingress requests (or nothing at all to say otherwise), then the egress rules.
  if (requests.length > 0 || attempts.length === 0) {
    const suggestion = suggest(loaded.config, requests);
    documents.push(`# Suggested from ${suggestion.observed} allowed requests.\n${comments([...suggestion.report, ...wouldDeny])}${stringify({ version: 'v1', policies: suggestion.policies })}`);
  }
  if (attempts.length > 0) {
    const egress = suggestEgress(loaded.config.egress, attempts);
    const header = `# Suggested egress allow rules from ${egress.observed} allowed egress attempts (put them in the config's egress section).\n`;
    documents.push(`${header}${comments([...egress.report, ...(requests.length > 0 ? [] : wouldDeny)])}${stringify({ egress: { allow: egress.allow } })}`);
  }
  process.stdout.write(documents.join('---\n'));
  return 0;
}

/** The config a policy tool reads: -c CONFIG, else the embedded development config (as `run`). */
async function loadForTool(configFile: string | undefined, stateDir: string | undefined): Promise<LoadedConfig | number> {
  try {
    if (configFile !== undefined) return loadConfigFile(configFile);
    return (await devMode()).loadDevConfig(path.resolve(stateDir ?? DEFAULTS.stateDir));
  } catch (err) {
    return reportConfigError(configFile ?? EMBEDDED_CONFIG, err);
  }
}

async function token(args: string[]): Promise<number> {
  const { values } = parseCommandLine(
    args,
    { sub: { type: 'string' }, claim: { type: 'string', multiple: true }, ttl: { type: 'string' }, 'state-dir': { type: 'string' } },
    'token',
  );
  if (values.help) return help('token');
  const stateDir = path.resolve((values['state-dir']) ?? DEFAULTS.stateDir);
  const dev = await devMode();
  let loaded: LoadedConfig;
  try {
    loaded = dev.loadDevConfig(stateDir);
  } catch (err) {
    return reportConfigError(EMBEDDED_CONFIG, err);
  }
  const provider = loaded.config.jwtProviders?.[0];
  if (!provider) throw new Error('the embedded config has no token provider');
  const claims: Record<string, string> = {};
  for (const pair of values.claim ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--claim takes NAME=VALUE, got ${pair}`, HELP.token);
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

/**
 * A gateway that cannot start says so in one line naming its config and exits 1. User errors (a port in use, a
 * permission) are not bugs, so no stack trace; the error's code and message say what happened.
 */
function reportStartFailure(configName: string, what: string, err: unknown): number {
  console.error(redactUrls(`portcullis: cannot start ${what} with ${configName}: ${err instanceof Error ? err.message : String(err)}`));
  return EXIT_FAILED;
}

function reportConfigError(configName: string, err: unknown): number {
  console.error(redactUrls(err instanceof ConfigError ? `invalid configuration:\n${err.message}` : `portcullis: cannot load ${configName}: ${(err as Error).message}`));
  return EXIT_FAILED;
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
