// `portcullis test`: request → expected decision cases, run through the same stages as `explain` (and so as
// the gateway), for policy reviews in CI. Like `opa test`: a mismatch fails the run with a readable diff.
import fs from 'node:fs';
import { parse } from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import type { LoadedConfig } from '../config/load.js';
import { ExplainInputError } from '../ingress/explain.js';
import { createDecisionRuntime, parseRequestSpec, type Explanation, type RequestSpec } from './decide.js';

export type TestFormat = 'text' | 'tap' | 'junit';

/** What a case may expect; each key given is compared, the others are not. */
const EXPECT_KEYS = ['decision', 'status', 'code', 'reason', 'route', 'policy', 'rule', 'headers'] as const;
type ExpectKey = (typeof EXPECT_KEYS)[number];
type Expectation = Partial<Record<ExpectKey, unknown>>;

export interface TestCase {
  file: string;
  name: string;
  request: RequestSpec;
  expect: Expectation;
}

export interface CaseResult {
  case: TestCase;
  /** One line per expected field that differs. */
  diffs: string[];
}

/** Reads case files; throws ExplainInputError naming the file and case that is malformed. */
export function readCases(files: readonly string[]): TestCase[] {
  return files.flatMap((file) => {
    let doc: unknown;
    try {
      doc = parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ExplainInputError(`${file}: ${(err as Error).message}`);
    }
    const cases = (doc as { cases?: unknown } | null)?.cases;
    if (!Array.isArray(cases) || cases.length === 0) throw new ExplainInputError(`${file}: needs a non-empty 'cases' list`);
    return cases.map((c: unknown, i): TestCase => {
      const where = `${file}: cases[${i}]`;
      const entry = (c ?? {}) as { name?: unknown; request?: unknown; expect?: unknown };
      if (typeof entry.name !== 'string') throw new ExplainInputError(`${where}.name: required`);
      if (entry.expect === null || typeof entry.expect !== 'object') throw new ExplainInputError(`${where}.expect: required`);
      const unknown = Object.keys(entry.expect).filter((k) => !(EXPECT_KEYS as readonly string[]).includes(k));
      if (unknown.length > 0) throw new ExplainInputError(`${where}.expect: unknown ${unknown.join(', ')} (known: ${EXPECT_KEYS.join(', ')})`);
      return { file, name: entry.name, request: parseRequestSpec(entry.request, `${where}.request`), expect: entry.expect as Expectation };
    });
  });
}

export async function runCases(loaded: LoadedConfig, cases: readonly TestCase[]): Promise<CaseResult[]> {
  const runtime = createDecisionRuntime(loaded.config);
  try {
    const results: CaseResult[] = [];
    for (const c of cases) results.push({ case: c, diffs: compare(c.expect, actualOf(await runtime.explain(c.request))) });
    return results;
  } finally {
    await runtime.close();
  }
}

/** The explanation in the terms a case expects. */
export function actualOf(e: Explanation): Record<ExpectKey, unknown> {
  if (e.kind === 'egress') {
    return {
      decision: e.decision.allowed ? 'allow' : 'deny',
      status: e.decision.allowed ? undefined : 403,
      code: e.decision.allowed ? undefined : 'GW_EGRESS_DENIED',
      reason: e.decision.reason,
      route: undefined,
      policy: undefined,
      rule: e.decision.rule,
      headers: undefined,
    };
  }
  const d = e.authorization?.decision;
  const o = e.outcome;
  return {
    decision: o.decision,
    status: o.decision === 'forward' ? undefined : o.status,
    code: o.decision === 'refuse' ? o.code : undefined,
    // An authorization refusal is described by the decision's reason; other refusals by their own.
    reason: o.decision === 'refuse' ? (o.code === 'GW_AUTHZ_DENIED' ? d?.reason : o.reason) : d?.reason,
    route: e.route,
    policy: d?.policy,
    rule: d?.rule,
    headers: e.forwarded?.headers,
  };
}

function compare(expect: Expectation, actual: Record<ExpectKey, unknown>): string[] {
  const diffs: string[] = [];
  for (const key of Object.keys(expect) as ExpectKey[]) {
    if (key === 'headers') {
      diffs.push(...compareHeaders(expect.headers, actual.headers as Record<string, unknown> | undefined));
    } else if (!isDeepStrictEqual(expect[key], actual[key])) {
      diffs.push(`${key}: expected ${show(expect[key])}, got ${show(actual[key])}`);
    }
  }
  return diffs;
}

/** `name: value` must be forwarded with that value; `name: null` must not be forwarded. */
function compareHeaders(expected: unknown, forwarded: Record<string, unknown> | undefined): string[] {
  if (expected === null || typeof expected !== 'object') return [`headers: expected a mapping of header names`];
  if (forwarded === undefined) return ['headers: expected forwarded headers, but the request is not forwarded'];
  return Object.entries(expected as Record<string, unknown>).flatMap(([name, want]) => {
    const got = forwarded[name.toLowerCase()];
    if (want === null) return got === undefined ? [] : [`headers.${name}: expected not forwarded, got ${show(got)}`];
    return isDeepStrictEqual(String(want), got) || isDeepStrictEqual(want, got) ? [] : [`headers.${name}: expected ${show(want)}, got ${show(got)}`];
  });
}

function show(value: unknown): string {
  return value === undefined ? '(nothing)' : JSON.stringify(value);
}

export function formatResults(results: readonly CaseResult[], format: TestFormat): string {
  if (format === 'tap') return tap(results);
  if (format === 'junit') return junit(results);
  const failed = results.filter((r) => r.diffs.length > 0);
  const lines = results.map((r) =>
    r.diffs.length === 0 ? `PASS ${r.case.file}: ${r.case.name}` : [`FAIL ${r.case.file}: ${r.case.name}`, ...r.diffs.map((d) => `     ${d}`)].join('\n'),
  );
  lines.push(`${results.length - failed.length} passed, ${failed.length} failed`);
  return `${lines.join('\n')}\n`;
}

function tap(results: readonly CaseResult[]): string {
  const lines = ['TAP version 13', `1..${results.length}`];
  results.forEach((r, i) => {
    lines.push(`${r.diffs.length === 0 ? 'ok' : 'not ok'} ${i + 1} - ${r.case.file}: ${r.case.name.replace(/#/g, '\\#')}`);
    if (r.diffs.length > 0) lines.push('  ---', '  diffs:', ...r.diffs.map((d) => `    - ${JSON.stringify(d)}`), '  ...');
  });
  return `${lines.join('\n')}\n`;
}

function junit(results: readonly CaseResult[]): string {
  const failures = results.filter((r) => r.diffs.length > 0).length;
  const cases = results.map((r) => {
    const open = `  <testcase classname="${xml(r.case.file)}" name="${xml(r.case.name)}"`;
    if (r.diffs.length === 0) return `${open}/>`;
    return `${open}>\n    <failure message="${xml(r.diffs[0]!)}">${xml(r.diffs.join('\n'))}</failure>\n  </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="portcullis policy tests" tests="${results.length}" failures="${failures}">\n${cases.join('\n')}\n</testsuite>\n`;
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
