// Loads the gateway configuration: YAML -> JSON Schema (the TypeBox schema) -> compile checks (compile.ts). Every issue is
// collected and reported at once with its file, JSON pointer and line, so a broken config is fixed in one pass.
// Defaults are NOT filled in here (see defaults.ts): unset must stay distinguishable from the default.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { PolicyFileSchema, type PolicyFile } from '../../policies/schema.js';
import { compileConfig, type PolicyRef } from './compile.js';
import { fsReason, resolvePaths, unreadable } from './paths.js';
import { humanize } from './schema-errors.js';
import { ConfigSchema, type Config } from './schema.js';
import { at, parseYaml, type Source } from './yaml-source.js';

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

  const policies: PolicyRef<Source>[] = (config.policies ?? []).map((policy, index) => ({ policy, src: main, index }));
  const files = [file, ...(config.policyFiles ?? []).map((f) => displayName(f, file))];
  for (const policyFile of config.policyFiles ?? []) {
    if (unreadableFiles.has(policyFile)) continue;
    const src = parseYaml(readFileSync(policyFile, 'utf8'), displayName(policyFile, file), issues);
    if (!src || !matchesSchema(validatePolicyFile, src, issues)) continue;
    (src.value as PolicyFile).policies.forEach((policy, index) => policies.push({ policy, src, index }));
  }
  if (config.policyFiles) config.policies = policies.map((p) => p.policy);

  compileConfig(config, main, policies, unreadableFiles, (pointer, message, src = main) => issues.push(at(src, pointer, message)));
  if (issues.length > 0) throw new ConfigError(sortIssues(issues, files));
  const read = [resolve(file), ...(config.policyFiles ?? [])];
  return { config, files: read, inputs: [...new Set([...read, ...inputs])] };
}

/**
 * Every input file a config names that must exist, with the JSON pointer naming it, resolved against `file`'s
 * folder (for tools and tests that provide the files).
 */
export function namedInputs(config: Config, file: string): { pointer: string; file: string }[] {
  const inputs: { pointer: string; file: string }[] = [];
  resolvePaths(structuredClone(config), (pointer, path, mustExist) => {
    const abs = resolve(dirname(resolve(file)), path);
    if (mustExist) inputs.push({ pointer, file: abs });
    return abs;
  });
  return inputs;
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

/** Main file first, then policy files in the order named; within a file, in reading order. */
function sortIssues(issues: readonly ConfigIssue[], files: readonly string[]): ConfigIssue[] {
  const last = Number.MAX_SAFE_INTEGER;
  return [...issues].sort(
    (a, b) => files.indexOf(a.file) - files.indexOf(b.file) || (a.line ?? last) - (b.line ?? last) || (a.column ?? 0) - (b.column ?? 0),
  );
}

