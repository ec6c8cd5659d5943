// Loads the gateway configuration: YAML -> JSON Schema (the TypeBox schema) -> semantic checks. Every issue is
// collected and reported at once with its file, JSON pointer and line, so a broken config is fixed in one pass.
// Defaults are NOT filled in here (see defaults.ts): unset must stay distinguishable from the default.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import ipaddr from 'ipaddr.js';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { compilePolicies, PolicyCompileError } from '../../policies/compile.js';
import { PolicyFileSchema } from '../../policies/schema.js';
import type { Policy, PolicyFile } from '../../policies/schema.js';
import { DEFAULTS } from './defaults.js';
import { ConfigSchema, certificateList, type Config } from './schema.js';

export interface ConfigIssue {
  file: string;
  /** JSON pointer inside `file`, e.g. `/routes/2/upstream`; '' is the whole document. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(formatIssues(issues));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface LoadedConfig {
  /** Validated; file paths absolute; policies from `policyFiles` appended to `policies`. */
  config: Config;
  /** Every file read (main config first, then policy files), for file watching and hot reload. */
  files: readonly string[];
  /** Every input the running gateway depends on: `files` plus the certificates, keys and bundles named. */
  inputs: readonly string[];
}

/** One line per issue: `file:line:col: /json/pointer: message`. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => {
      const where = i.line === undefined ? i.file : `${i.file}:${i.line}:${i.column ?? 1}`;
      return i.path === '' ? `${where}: ${i.message}` : `${where}: ${i.path}: ${i.message}`;
    })
    .join('\n');
}

export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `cannot read config: ${fsReason(err)}` }]);
  }
  return loadConfigText(text, file);
}

/**
 * `file` names the text in issues and is the base for relative paths. With `vars`, `${NAME}` and
 * `${NAME:-fallback}` are replaced before parsing (the embedded default config uses them for its state dir and
 * ports); without `vars` the text is taken literally, so user configs never expand anything implicitly.
 */
export function loadConfigText(text: string, file: string, vars?: Record<string, string>): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const main = parseYaml(vars ? substitute(text, vars, file, issues) : text, file, issues);
  if (!main || !matchesSchema(validateConfig, main, issues)) throw new ConfigError(sortIssues(issues, [file]));

  const base = dirname(resolve(file));
  const config = main.value as Config;
  const unreadableFiles = new Set<string>();
  const inputs = new Set<string>();
  resolvePaths(config, (pointer, path, mustExist) => {
    const abs = resolve(base, path);
    if (mustExist) inputs.add(abs);
    const problem = mustExist ? unreadable(abs) : undefined;
    if (problem) {
      issues.push(at(main, pointer, `${abs}: ${problem}`));
      unreadableFiles.add(abs);
    }
    return abs;
  });

  const policies: PolicyRef[] = (config.policies ?? []).map((policy, index) => ({ policy, src: main, index }));
  const files = [file, ...(config.policyFiles ?? []).map((f) => displayName(f, file))];
  for (const policyFile of config.policyFiles ?? []) {
    if (unreadableFiles.has(policyFile)) continue;
    const src = parseYaml(readFileSync(policyFile, 'utf8'), displayName(policyFile, file), issues);
    if (!src || !matchesSchema(validatePolicyFile, src, issues)) continue;
    (src.value as PolicyFile).policies.forEach((policy, index) => policies.push({ policy, src, index }));
  }
  if (config.policyFiles) config.policies = policies.map((p) => p.policy);

  checkSemantics(config, main, policies, issues);
  if (issues.length > 0) throw new ConfigError(sortIssues(issues, files));
  const read = [resolve(file), ...(config.policyFiles ?? [])];
  return { config, files: read, inputs: [...new Set([...read, ...inputs])] };
}

/** Policy files are named in issues the way the main file was: relative to the working directory if it was. */
function displayName(abs: string, mainFile: string): string {
  const rel = relative(process.cwd(), abs);
  return isAbsolute(mainFile) || rel.startsWith('..') ? abs : rel;
}

// Compiled once: `verbose` keeps the failing schema and data on each error, which the messages below need.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
const validateConfig = ajv.compile(ConfigSchema);
const validatePolicyFile = ajv.compile(PolicyFileSchema);

/** A parsed YAML file: its plain value and what is needed to turn a JSON pointer into a line. */
interface Source {
  file: string;
  doc: Document;
  lines: LineCounter;
  value: unknown;
}

interface PolicyRef {
  policy: Policy;
  src: Source;
  index: number;
}

function parseYaml(text: string, file: string, issues: ConfigIssue[]): Source | undefined {
  const lines = new LineCounter();
  // YAML 1.2 core schema (no `yes`/`on` booleans); uniqueKeys makes a duplicated key an error, not a silent override.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const { line, col } = lines.linePos(e.pos[0]);
      // Only a duplicate key sits in an intact structure; after a syntax error the tree is guesswork.
      const duplicate = e.code === 'DUPLICATE_KEY';
      const path = duplicate ? pathAt(doc.contents, e.pos[0], '') : '';
      issues.push({ file, path, line, column: col, message: duplicate ? 'duplicate key' : e.message });
    }
    return undefined;
  }
  try {
    return { file, doc, lines, value: doc.toJS() };
  } catch (err) {
    // toJS refuses alias bombs ("billion laughs") past its alias-count limit.
    issues.push({ file, path: '', message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

function substitute(text: string, vars: Record<string, string>, file: string, issues: ConfigIssue[]): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (ref, name: string, fallback: string | undefined, offset: number) => {
    const value = Object.hasOwn(vars, name) ? vars[name] : fallback;
    if (value !== undefined) return value;
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    issues.push({ file, path: '', line, column: offset - before.lastIndexOf('\n'), message: `undefined variable ${ref}` });
    return ref;
  });
}

function matchesSchema(validate: ValidateFunction, src: Source, issues: ConfigIssue[]): boolean {
  if (validate(src.value)) return true;
  for (const e of humanize(validate.errors ?? [])) issues.push(at(src, e.path, e.message, e.onKey));
  return false;
}

interface Finding {
  path: string;
  message: string;
  /** Point at the key rather than its value (an unknown key has no meaningful value position). */
  onKey?: boolean;
}

/**
 * Ajv reports every branch of a failed `anyOf` (TypeBox unions), which buries the one real mistake under
 * messages about branches the user never meant. Pick the branch that fits (by a `const` discriminator such
 * as `mode`, else the one of the right type with the fewest errors) and report only its errors; when no branch
 * fits better than another, list the choices instead.
 */
function humanize(errors: readonly ErrorObject[]): Finding[] {
  const owns = (a: ErrorObject, e: ErrorObject) =>
    e !== a &&
    e.schemaPath.startsWith(`${a.schemaPath}/`) &&
    (e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`));
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const outer = unions.filter((a) => !unions.some((b) => owns(b, a)));
  const findings = errors.filter((e) => e.keyword !== 'anyOf' && !outer.some((a) => owns(a, e))).map(describeError);
  for (const a of outer) findings.push(...explainUnion(a, errors.filter((e) => owns(a, e))));
  return findings;
}

function explainUnion(a: ErrorObject, inner: readonly ErrorObject[]): Finding[] {
  const branches = a.schema as Record<string, unknown>[];
  const choices = `must be one of: ${branches.map(describeSchema).join(', ')}`;
  const branchErrors = (k: number) => inner.filter((e) => e.schemaPath.startsWith(`${a.schemaPath}/${k}/`));
  if (branches.every((b) => 'const' in b)) return [{ path: a.instancePath, message: choices }];

  const data = a.data;
  const discriminator = isRecord(data) ? discriminatorOf(branches) : undefined;
  if (isRecord(data) && discriminator !== undefined) {
    const values = branches.map((b) => (b.properties as Record<string, { const: unknown }>)[discriminator]?.const);
    const allowed = `one of: ${values.map((v) => JSON.stringify(v)).join(', ')}`;
    if (!(discriminator in data)) return [{ path: a.instancePath, message: `missing required key "${discriminator}" (${allowed})` }];
    const k = values.indexOf(data[discriminator]);
    if (k < 0) return [{ path: `${a.instancePath}/${escapePointer(discriminator)}`, message: `must be ${allowed}` }];
    return humanize(branchErrors(k));
  }

  const fitting = branches.map((b, k) => ({ k, count: branchErrors(k).length })).filter(({ k }) => typeFits(branches[k], data));
  const fewest = Math.min(...fitting.map((f) => f.count));
  const best = fitting.filter((f) => f.count === fewest);
  if (best.length === 1 && best[0]) return humanize(branchErrors(best[0].k));
  return [{ path: a.instancePath, message: choices }];
}

function discriminatorOf(branches: readonly Record<string, unknown>[]): string | undefined {
  const first = branches[0]?.properties;
  if (!isRecord(first)) return undefined;
  return Object.keys(first).find((key) =>
    branches.every((b) => isRecord(b.properties) && isRecord(b.properties[key]) && 'const' in b.properties[key]),
  );
}

function describeError(e: ErrorObject): Finding {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: `${e.instancePath}/${escapePointer(String(p.additionalProperty))}`, message: `unknown key "${String(p.additionalProperty)}"`, onKey: true };
    case 'required':
      return { path: e.instancePath, message: `missing required key "${String(p.missingProperty)}"` };
    case 'type':
      return { path: e.instancePath, message: `must be ${String(p.type)}, not ${jsonType(e.data)}` };
    case 'const':
      return { path: e.instancePath, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'pattern': {
      const description = e.parentSchema?.description;
      return {
        path: e.instancePath,
        message: `${JSON.stringify(e.data)} does not match ${String(p.pattern)}${description ? ` (${String(description)})` : ''}`,
      };
    }
    case 'minItems':
      return { path: e.instancePath, message: `must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}` };
    case 'minLength':
      return { path: e.instancePath, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` };
    default:
      return { path: e.instancePath, message: e.message ?? e.keyword };
  }
}

function describeSchema(s: Record<string, unknown>): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (s.type === 'object') {
    const keys = Array.isArray(s.required) && s.required.length > 0 ? s.required : Object.keys(isRecord(s.properties) ? s.properties : {});
    return `{${keys.join(', ')}}`;
  }
  return String(s.type);
}

function typeFits(schema: Record<string, unknown> | undefined, data: unknown): boolean {
  const want = schema?.type;
  const have = jsonType(data);
  return want === undefined || want === have || (want === 'number' && have === 'integer');
}

function jsonType(data: unknown): string {
  if (data === null) return 'null';
  if (Array.isArray(data)) return 'array';
  if (typeof data === 'number') return Number.isInteger(data) ? 'integer' : 'number';
  return typeof data;
}

/**
 * Rewrites every file path in `config` through `named`: the one list of which fields are files. Outputs (the
 * state dir the dev bootstrap creates, the egress audit log) are resolved but need not exist yet.
 */
function resolvePaths(config: Config, named: (pointer: string, path: string, mustExist: boolean) => string): void {
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
  const admin = config.admin;
  if (admin?.tokenFile !== undefined) admin.tokenFile = named('/admin/tokenFile', admin.tokenFile, true);
  if (admin?.tls) {
    admin.tls.certificate.cert = named('/admin/tls/certificate/cert', admin.tls.certificate.cert, true);
    admin.tls.certificate.key = named('/admin/tls/certificate/key', admin.tls.certificate.key, true);
    if (admin.tls.clientCa !== undefined) admin.tls.clientCa = named('/admin/tls/clientCa', admin.tls.clientCa, true);
  }
}

function unreadable(abs: string): string | undefined {
  try {
    if (!statSync(abs).isFile()) return 'not a regular file';
    accessSync(abs, constants.R_OK);
    return undefined;
  } catch (err) {
    return fsReason(err);
  }
}

function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'not a regular file';
  return err instanceof Error ? err.message : String(err);
}

function checkSemantics(config: Config, main: Source, policies: readonly PolicyRef[], issues: ConfigIssue[]): void {
  const issue = (path: string, message: string, src = main) => issues.push(at(src, path, message));
  const inMain = <T extends { name: string }>(items: readonly T[] | undefined, prefix: string) =>
    (items ?? []).map((item, i) => ({ name: item.name, src: main, path: `${prefix}/${i}/name` }));

  const hosts = config.listeners.flatMap((l, i) => l.hosts.map((h, j) => ({ host: h, path: `/listeners/${i}/hosts/${j}` })));
  noDuplicates(inMain(config.listeners, '/listeners'), 'listener', issues);
  noDuplicates(hosts.map(({ host, path }) => ({ name: host.name, src: main, path: `${path}/name` })), 'virtual host', issues);
  noDuplicates(inMain(config.upstreams, '/upstreams'), 'upstream', issues);
  noDuplicates(inMain(config.routes, '/routes'), 'route', issues);
  noDuplicates(inMain(config.jwtProviders, '/jwtProviders'), 'JWT provider', issues);
  noDuplicates(inMain(config.rateLimits, '/rateLimits'), 'rate limit', issues);
  noDuplicates(policies.map(({ policy, src, index }) => ({ name: policy.name, src, path: `/policies/${index}/name` })), 'policy', issues);

  const bound: { address: string; port: number; name: string }[] = [];
  config.listeners.forEach((l, i) => {
    const address = l.address ?? DEFAULTS.listenerAddress;
    // Port 0 asks the OS for a free port, so such listeners never collide; a wildcard address collides with all.
    const clash = bound.find((b) => l.port !== 0 && b.port === l.port && (b.address === address || WILDCARDS.has(b.address) || WILDCARDS.has(address)));
    if (clash) issue(`/listeners/${i}/port`, `${address}:${l.port} is already used by listener "${clash.name}"`);
    bound.push({ address, port: l.port, name: l.name });
    if (l.defaultHost !== undefined && !l.hosts.some((h) => h.name === l.defaultHost)) {
      issue(`/listeners/${i}/defaultHost`, `no virtual host named "${l.defaultHost}" on this listener`);
    }

    const claimed = new Map<string, string>();
    l.hosts.forEach((h, j) =>
      h.hostnames.forEach((hostname, k) => {
        const key = hostname.toLowerCase().replace(/\.$/, '');
        const owner = claimed.get(key);
        if (owner !== undefined) issue(`/listeners/${i}/hosts/${j}/hostnames/${k}`, `hostname "${hostname}" is already claimed by virtual host "${owner}" on this listener`);
        else claimed.set(key, h.name);
      }),
    );
  });

  const upstreams = new Map(config.upstreams.map((u) => [u.name, u]));
  const providers = new Set((config.jwtProviders ?? []).map((p) => p.name));
  const vhosts = new Map(hosts.map(({ host }) => [host.name, host]));
  const routes = new Set(config.routes.map((r) => r.name));
  const rateLimits = new Set((config.rateLimits ?? []).map((l) => l.name));

  for (const { host, path } of hosts) {
    if (host.tls.mode === 'passthrough') {
      const upstream = upstreams.get(host.tls.upstream);
      if (!upstream) issue(`${path}/tls/upstream`, `no upstream named "${host.tls.upstream}"`);
      else if (!upstream.url.startsWith('tcp://')) issue(`${path}/tls/upstream`, `passthrough upstream "${upstream.name}" must be tcp://host:port`);
    } else if (host.tls.clientAuth !== undefined && host.tls.clientAuth !== 'none' && host.tls.clientCa === undefined && !config.mesh) {
      issue(`${path}/tls/clientAuth`, 'client certificates are verified against the mesh trust bundle unless clientCa is set, and "mesh" is not configured');
    }
  }

  config.routes.forEach((r, i) => {
    const upstream = upstreams.get(r.upstream);
    if (!upstream) issue(`/routes/${i}/upstream`, `no upstream named "${r.upstream}"`);
    else if (!/^https?:\/\//.test(upstream.url)) issue(`/routes/${i}/upstream`, `upstream "${upstream.name}" is ${upstream.url}; an HTTP route needs an http:// or https:// upstream`);
    r.jwtProviders?.forEach((p, k) => {
      if (!providers.has(p)) issue(`/routes/${i}/jwtProviders/${k}`, `no JWT provider named "${p}"`);
    });
    if (r.rateLimit !== undefined && !rateLimits.has(r.rateLimit)) issue(`/routes/${i}/rateLimit`, `no rate limit named "${r.rateLimit}"`);
    r.match.hosts?.forEach((h, k) => {
      const host = vhosts.get(h);
      if (!host) issue(`/routes/${i}/match/hosts/${k}`, `no virtual host named "${h}"`);
      else if (host.tls.mode === 'passthrough') issue(`/routes/${i}/match/hosts/${k}`, `virtual host "${h}" passes TLS through; HTTP routes cannot match it`);
    });
  });

  config.jwtProviders?.forEach((p, i) => {
    const sources = (['jwksUri', 'jwks', 'jwksFile'] as const).filter((k) => p[k] !== undefined);
    if (sources.length !== 1) issue(`/jwtProviders/${i}`, `needs exactly one of jwksUri, jwks, jwksFile (${sources.length === 0 ? 'none set' : `found ${sources.join(', ')}`})`);
  });

  config.upstreams.forEach((u, i) => {
    if (u.url.startsWith('https://')) {
      if ((u.tls?.mutual ?? DEFAULTS.upstreamMutualTls) && !config.mesh) {
        const path = u.tls?.mutual === undefined ? `/upstreams/${i}/url` : `/upstreams/${i}/tls/mutual`;
        issue(path, 'mutual TLS (the default for https upstreams) presents the gateway SVID, so "mesh" must be configured; or set tls.mutual: false');
      }
    } else {
      for (const key of Object.keys(u.tls ?? {})) issue(`/upstreams/${i}/tls/${key}`, 'only applies to https:// upstreams');
    }
  });

  if (config.admin?.tls && config.admin.tls.clientCa === undefined && !config.mesh) {
    issue('/admin/tls', 'client certificates are verified against the mesh trust bundle unless clientCa is set, and "mesh" is not configured');
  }

  config.egress?.proxyAuthorization?.providers.forEach((name, i) => {
    if (!providers.has(name)) issue(`/egress/proxyAuthorization/providers/${i}`, `no JWT provider named "${name}"`);
  });

  config.trustedProxies?.forEach((cidr, i) => {
    if (!isAddressOrCidr(cidr)) issue(`/trustedProxies/${i}`, `"${cidr}" is not an IP address or CIDR block`);
  });

  for (const { policy, src, index } of policies) {
    policy.routes?.forEach((r, k) => {
      if (!routes.has(r)) issue(`/policies/${index}/routes/${k}`, `no route named "${r}"`, src);
    });
    for (const { pointer, message } of policyProblems(policy, index)) issue(pointer, message, src);
  }
}

/**
 * What the policy compiler refuses beyond the schema (bad CIDRs, misplaced templates, unknown `when`
 * keys), located in the file that holds the policy. Each policy is compiled alone so that its problems'
 * `policies[0]…` paths map back to its own index.
 */
function policyProblems(policy: Policy, index: number): { pointer: string; message: string }[] {
  try {
    compilePolicies([policy]);
    return [];
  } catch (err) {
    if (!(err instanceof PolicyCompileError)) throw err;
    return err.problems.map((problem) => {
      const split = problem.indexOf(': ');
      const path = split === -1 ? 'policies[0]' : problem.slice(0, split);
      const pointer = path.replace(/^policies\[0\]/, `/policies/${index}`).replace(/\.([^.[]+)/g, '/$1').replace(/\[(\d+)\]/g, '/$1');
      return { pointer, message: split === -1 ? problem : problem.slice(split + 2) };
    });
  }
}

const WILDCARDS = new Set(['0.0.0.0', '::', '::0']);

function noDuplicates(items: readonly { name: string; src: Source; path: string }[], what: string, issues: ConfigIssue[]): void {
  const seen = new Map<string, { src: Source; path: string }>();
  for (const item of items) {
    const first = seen.get(item.name);
    if (!first) {
      seen.set(item.name, item);
      continue;
    }
    const where = first.src === item.src ? first.path : `${first.src.file} ${first.path}`;
    issues.push(at(item.src, item.path, `duplicate ${what} name "${item.name}" (first defined at ${where})`));
  }
}

function isAddressOrCidr(value: string): boolean {
  // Four-part decimal only for IPv4: inet_aton forms such as `127.1` or `0x7f.1` are ambiguous across parsers,
  // and a trust list is the wrong place for ambiguity.
  return (
    ipaddr.IPv4.isValidFourPartDecimal(value) ||
    ipaddr.IPv4.isValidCIDRFourPartDecimal(value) ||
    ipaddr.IPv6.isValid(value) ||
    ipaddr.IPv6.isValidCIDR(value)
  );
}

/** An issue at `pointer`, located at that node or, when it does not exist, at the nearest parent that does. */
function at(src: Source, pointer: string, message: string, onKey = false): ConfigIssue {
  let node: unknown = src.doc.contents;
  let range = isNode(node) ? node.range : undefined;
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
  for (const [n, segment] of segments.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) break;
      node = pair.value;
      const last = n === segments.length - 1;
      range = (last && onKey) || !isNode(node) ? (isNode(pair.key) ? pair.key.range : range) : node.range;
    } else if (isSeq(node)) {
      node = node.items[Number(segment)];
      if (!isNode(node)) break;
      range = node.range;
    } else {
      break;
    }
  }
  if (!range) return { file: src.file, path: pointer, message };
  const { line, col } = src.lines.linePos(range[0]);
  return { file: src.file, path: pointer, line, column: col, message };
}

/** The JSON pointer of the deepest node at `offset` (for YAML errors, which come with an offset only). */
function pathAt(node: unknown, offset: number, path: string): string {
  const within = (n: unknown) => isNode(n) && n.range !== undefined && n.range !== null && offset >= n.range[0] && offset < n.range[2];
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? `${path}/${escapePointer(String(pair.key.value))}` : path;
      if (within(pair.key)) return key;
      if (within(pair.value)) return pathAt(pair.value, offset, key);
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) if (within(item)) return pathAt(item, offset, `${path}/${i}`);
  }
  return path;
}

/** Main file first, then policy files in the order named; within a file, in reading order. */
function sortIssues(issues: readonly ConfigIssue[], files: readonly string[]): ConfigIssue[] {
  const last = Number.MAX_SAFE_INTEGER;
  return [...issues].sort(
    (a, b) => files.indexOf(a.file) - files.indexOf(b.file) || (a.line ?? last) - (b.line ?? last) || (a.column ?? 0) - (b.column ?? 0),
  );
}

const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
const unescapePointer = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~');
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
