// One config truth: `portcullis validate` succeeds exactly when the gateway starts. Every config the project shows a
// user (each fixture, each policy example, each YAML block in README.md and docs/, the embedded default) either
// validates AND starts (the real gateway and admin plane, on port 0), or is refused by both `validate` and the real
// `portcullis run` process with the same messages.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { ensureDevPki } from '../../../certs/dev-bootstrap.js';
import { startGateway } from '../../../gateway/app.js';
import { formatIssues, loadConfigFile, namedInputs } from '../../../gateway/config/load.js';
import type { Config } from '../../../gateway/config/schema.js';
import { runValidate } from '../../../gateway/config/validate-command.js';
import { createLogger } from '../../../gateway/core/log.js';
import { loadDevConfig } from '../../../gateway/dev/dev-mode.js';
import { createReloader } from '../../../gateway/reload.js';
import { portcullis } from '../../helpers/cli.js';
import { configFixtures, writeMissingInputs } from '../../helpers/config-material.js';
import { onFreePorts, startAndStop } from '../../helpers/start.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** YAML blocks of the docs that are not gateway configs (or cannot be started here), each with the reason. */
const NOT_STARTED: Record<string, string> = {
  'docs/kubernetes.md#1': 'Helm values (dashboard and alerts): checked by the chart tests against values.schema.json',
  'docs/kubernetes.md#2': 'Helm values (replicas, a Redis secret): checked by the chart tests against values.schema.json',
  'docs/kubernetes.md#3': 'cert-manager resources, not a gateway config',
  'docs/kubernetes.md#4': 'Helm values (egress NetworkPolicy): checked by the chart tests against values.schema.json',
  'docs/kubernetes.md#5': 'Helm values (extraEnv from a Secret): checked by the chart tests against values.schema.json',
  'docs/traffic.md#2': 'resolves a cluster DNS name, which a test may not query; DNS endpoints are covered by test/unit/ingress/upstream/endpoints.test.ts',
};

/** Doc blocks run with one text replaced: what a test may not reach or write, moved to where it may. */
const REWRITTEN: Record<string, { from: string; to: string; why: string }> = {
  'docs/operations.md#3': { from: 'rediss://redis.internal:6380/0', to: 'redis://127.0.0.1:6379/0', why: 'the shared test Redis instead of redis.internal' },
  'docs/operations.md#5': { from: '/run/secrets/', to: 'run-secrets/', why: 'the admin token in the test folder instead of a Kubernetes secret path' },
};

/** What fragments are merged into: one of each section, every file relative, ports fixed (the check must see them). */
const BASE: Record<string, unknown> = {
  version: 'v1',
  listeners: [
    {
      name: 'edge',
      address: '127.0.0.1',
      port: 8443,
      hosts: [{ name: 'www', hostnames: ['www.example.com'], tls: { mode: 'terminate', certificate: { cert: 'certs/edge.pem', key: 'certs/edge-key.pem' } } }],
    },
  ],
  upstreams: [{ name: 'app', url: 'http://127.0.0.1:8080' }],
  routes: [{ name: 'api', match: { path: { prefix: '/api' } }, upstream: 'app' }],
  egress: {
    listener: { address: '127.0.0.1', port: 3128 },
    sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1/32'] }],
    allow: [{ name: 'web', identities: ['local'], hosts: ['example.com'] }],
  },
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; anything else (lists included) the fragment's value replaces. */
function merge(base: unknown, fragment: unknown): unknown {
  if (!isRecord(base) || !isRecord(fragment)) return fragment;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(fragment)) out[k] = merge(base[k], v);
  return out;
}

interface Case {
  name: string;
  /** Writes the config (and the files it names) and returns its path. */
  file(): string;
  /** Docs, examples and the default must be valid; fixtures only need validate and run to agree. */
  mustBeValid: boolean;
}

let work: string;

function yamlBlocks(doc: string): string[] {
  return [...readFileSync(join(ROOT, doc), 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
}

/** A doc block as a config file in its own folder, with every input file it names generated there. */
function docCase(doc: string, index: number, shown: string): Case {
  const rewrite = REWRITTEN[`${doc}#${index}`];
  const text = rewrite ? shown.replace(rewrite.from, rewrite.to) : shown;
  return {
    name: `${doc} YAML block ${index}${rewrite ? ` (${rewrite.why})` : ''}`,
    mustBeValid: true,
    file() {
      const dir = join(work, `${doc.replace(/\W/g, '-')}-${index}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'config.yaml');
      const parsed = parse(text) as Record<string, unknown>;
      // A whole config is written as it stands in the docs; a fragment (or a policy file) is merged into BASE.
      const whole = 'listeners' in parsed;
      const config = whole ? parsed : merge(BASE, withRoutesFor(parsed));
      writeFileSync(file, whole ? text : stringify(config));
      const trustDomain = isRecord(parsed.mesh) ? String(parsed.mesh.trustDomain) : 'example.org';
      writeMissingInputs(namedInputs(config as Config, file), trustDomain);
      return file;
    },
  };
}

/** A policy fragment names routes; the config it is merged into must have them. */
function withRoutesFor(fragment: Record<string, unknown>): Record<string, unknown> {
  const policies = Array.isArray(fragment.policies) ? (fragment.policies as { routes?: string[] }[]) : [];
  const names = [...new Set(policies.flatMap((p) => p.routes ?? []))];
  if (names.length === 0 || 'routes' in fragment) return fragment;
  return { ...fragment, routes: names.map((name) => ({ name, match: { path: { prefix: `/${name}` } }, upstream: 'app' })) };
}

function policyExampleCase(example: string): Case {
  return {
    name: `policies/examples/${example}`,
    mustBeValid: true,
    file() {
      const path = join(ROOT, 'policies/examples', example);
      const dir = join(work, `example-${example}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'config.yaml');
      const config = merge(BASE, { ...withRoutesFor(parse(readFileSync(path, 'utf8')) as Record<string, unknown>), policies: undefined, policyFiles: [path] });
      delete (config as Record<string, unknown>).policies;
      writeFileSync(file, stringify(config));
      writeMissingInputs(namedInputs(config as Config, file), 'example.org');
      return file;
    },
  };
}

function fixtureCase(fixture: string): Case {
  return { name: `test/fixtures/config/${fixture}`, mustBeValid: fixture === 'good.yaml', file: () => join(configFixtures(), fixture) };
}

function cases(): Case[] {
  const docs = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  return [
    ...readdirSync(join(ROOT, 'test/fixtures/config')).filter((f) => f.endsWith('.yaml')).sort().map(fixtureCase),
    ...readdirSync(join(ROOT, 'policies/examples')).filter((f) => f.endsWith('.yaml')).sort().map(policyExampleCase),
    ...docs.flatMap((doc) =>
      yamlBlocks(doc)
        .map((text, i) => ({ text, key: `${doc}#${i + 1}` }))
        .filter(({ key }) => !(key in NOT_STARTED))
        .map(({ text, key }) => docCase(doc, Number(key.split('#')[1]), text)),
    ),
  ];
}

function validate(file: string): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runValidate(file, { write: (s: string) => out.push(s) }, { write: (s: string) => err.push(s) });
  return { code, out: out.join(''), err: err.join('') };
}

describe('validate succeeds exactly when run starts', () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-validate-run-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const c of cases()) {
    test(c.name, async () => {
      const file = c.file();
      const validated = validate(file);
      if (c.mustBeValid) assert.equal(validated.err, '', `${c.name} must be a valid config`);
      if (validated.code === 0) {
        await startAndStop(onFreePorts(loadConfigFile(file).config));
        return;
      }
      const run = await portcullis(['run', '-c', file]);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stderr, `invalid configuration:\n${validated.err}`, `${relative(ROOT, file)}: run and validate disagree`);
    });
  }

  test('the embedded default config', async () => {
    const stateDir = join(work, 'default-state');
    ensureDevPki(stateDir, { trustDomain: 'portcullis.dev', hostnames: ['localhost'] });
    await startAndStop(onFreePorts(loadDevConfig(stateDir).config));
  });

  test('a reload refuses what validate refuses, with the same located issues, and keeps the running config', async () => {
    const file = join(configFixtures(), 'reload.yaml');
    copyFileSync(join(configFixtures(), 'good.yaml'), file);
    const initial = loadConfigFile(file);
    const logger = createLogger('silent');
    const gateway = await startGateway(onFreePorts(initial.config), { logger, fetch: () => Promise.reject(new Error('no network in tests')) });
    const reloader = createReloader({ load: () => loadConfigFile(file), parts: [gateway], initial, logger, watchIntervalMs: 0 });
    try {
      copyFileSync(join(configFixtures(), 'compile-errors.yaml'), file);
      const result = await reloader.reload('test');
      assert.ok(!result.ok && typeof result.issues !== 'string');
      assert.equal(`${formatIssues(result.issues)}\n`, validate(file).err);
      assert.equal(gateway.runtime().config.listeners[0]?.name, 'edge');
    } finally {
      reloader.close();
      await gateway.close(0);
    }
  });

  test('every doc block not started is listed with a reason, and still exists', () => {
    for (const key of Object.keys(NOT_STARTED)) {
      const [doc, n] = key.split('#');
      assert.ok(yamlBlocks(doc!).length >= Number(n), `${key} no longer exists`);
    }
    for (const [key, { from }] of Object.entries(REWRITTEN)) {
      const [doc, n] = key.split('#');
      assert.ok(yamlBlocks(doc!)[Number(n) - 1]?.includes(from), `${key} no longer has ${from}`);
    }
  });
});
