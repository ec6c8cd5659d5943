// Static checks of the Helm chart and the Dockerfile. There is no helm binary here, so the chart is rendered by a
// small stand-in for Go's text/template plus the few Sprig functions the chart uses, then every manifest is parsed
// and checked as a Kubernetes object. The renderer evaluates real template semantics (whitespace trimming, pipelines,
// if/else if/with/range, variables, include) rather than blanking expressions out, so a template that indents a
// block wrongly or reads a value that does not exist fails here as it would under `helm template`. It throws on
// anything it does not implement, so the chart cannot drift outside what this test really checks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ConfigSchema } from '../../../gateway/config/schema.js';
import { PolicyFileSchema } from '../../../policies/schema.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(root, 'helm/portcullis');
const templatesDir = join(chartDir, 'templates');
const read = (path: string) => readFileSync(path, 'utf8');

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------------------------
// A stand-in for Go text/template + Sprig, limited to what the chart uses.

type Operand =
  | { t: 'field'; base: string | null; path: string[] } // base null: dot; '$' or '$name': a variable
  | { t: 'lit'; v: unknown }
  | { t: 'fn'; name: string }
  | { t: 'sub'; pipe: Pipeline };
interface Pipeline {
  decl?: { vars: string[]; op: ':=' | '=' };
  cmds: Operand[][];
}
type TNode =
  | { k: 'text'; text: string }
  | { k: 'out'; pipe: Pipeline }
  | { k: 'if'; branches: { cond: Pipeline; body: TNode[] }[]; otherwise: TNode[] }
  | { k: 'with' | 'range'; pipe: Pipeline; body: TNode[]; otherwise: TNode[] };

const TOKEN =
  /\s+|("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)|(:=|=|\||\(|\)|,)|(\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|((?:\.[A-Za-z0-9_]+)+|\.)|([A-Za-z_][A-Za-z0-9_]*)/y;

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m) throw new Error(`template: cannot tokenize ${JSON.stringify(src.slice(at))}`);
    if (m[0].trim()) tokens.push(m[0]);
  }
  return tokens;
}

function parsePipeline(tokens: string[]): Pipeline {
  let i = 0;
  const pipe: Pipeline = { cmds: [] };
  const declAt = tokens.findIndex((t) => t === ':=' || t === '=');
  if (declAt > 0 && tokens.slice(0, declAt).every((t) => t.startsWith('$') || t === ',')) {
    pipe.decl = { vars: tokens.slice(0, declAt).filter((t) => t !== ','), op: tokens[declAt] as ':=' | '=' };
    i = declAt + 1;
  }
  let cmd: Operand[] = [];
  while (i < tokens.length) {
    const tok = tokens[i++] as string;
    if (tok === '|') {
      pipe.cmds.push(cmd);
      cmd = [];
    } else if (tok === '(') {
      let depth = 1;
      const start = i;
      while (depth > 0) {
        const t = tokens[i++];
        if (t === undefined) throw new Error('template: unclosed (');
        if (t === '(') depth++;
        if (t === ')') depth--;
      }
      cmd.push({ t: 'sub', pipe: parsePipeline(tokens.slice(start, i - 1)) });
    } else cmd.push(operand(tok));
  }
  pipe.cmds.push(cmd);
  if (pipe.cmds.some((c) => c.length === 0)) throw new Error(`template: empty command in ${tokens.join(' ')}`);
  return pipe;
}

function operand(tok: string): Operand {
  if (tok.startsWith('"')) return { t: 'lit', v: JSON.parse(tok) };
  if (tok.startsWith('`')) return { t: 'lit', v: tok.slice(1, -1) };
  if (/^-?\d/.test(tok)) return { t: 'lit', v: Number(tok) };
  if (tok === 'true' || tok === 'false') return { t: 'lit', v: tok === 'true' };
  if (tok === 'nil') return { t: 'lit', v: undefined };
  if (tok === '.') return { t: 'field', base: null, path: [] };
  if (tok.startsWith('.')) return { t: 'field', base: null, path: tok.slice(1).split('.') };
  if (tok.startsWith('$')) {
    const [base, ...path] = tok.split('.');
    return { t: 'field', base: base as string, path };
  }
  return { t: 'fn', name: tok };
}

/** Parses a template file into its top-level nodes, collecting `define`d templates into `defines`. */
function parseTemplate(src: string, defines: Map<string, TNode[]>): TNode[] {
  const parts: (string | { code: string })[] = [];
  const ACTION = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = ACTION.exec(src); m; m = ACTION.exec(src)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.trimStart();
    if (m[1]) text = text.trimEnd();
    parts.push(text);
    const code = (m[2] as string).trim();
    if (!code.startsWith('/*')) parts.push({ code });
    trimNext = Boolean(m[3]);
    last = ACTION.lastIndex;
  }
  parts.push(trimNext ? src.slice(last).trimStart() : src.slice(last));

  type Frame = { node: Extract<TNode, { otherwise: TNode[] }> | { k: 'define'; name: string; body: TNode[] }; target: TNode[] };
  const top: TNode[] = [];
  const stack: Frame[] = [];
  let out = top;
  for (const part of parts) {
    if (typeof part === 'string') {
      if (part) out.push({ k: 'text', text: part });
      continue;
    }
    const tokens = tokenize(part.code);
    const [head, ...rest] = tokens;
    const frame = stack.at(-1);
    if (head === 'if' || head === 'with' || head === 'range') {
      const pipe = parsePipeline(rest);
      const node: Extract<TNode, { otherwise: TNode[] }> =
        head === 'if' ? { k: 'if', branches: [{ cond: pipe, body: [] }], otherwise: [] } : { k: head, pipe, body: [], otherwise: [] };
      out.push(node);
      stack.push({ node, target: out });
      out = node.k === 'if' ? (node.branches[0] as { body: TNode[] }).body : node.body;
    } else if (head === 'define') {
      const node = { k: 'define' as const, name: JSON.parse(rest[0] as string) as string, body: [] as TNode[] };
      stack.push({ node, target: out });
      out = node.body;
    } else if (head === 'else') {
      if (!frame || frame.node.k === 'define') throw new Error('template: else outside if/with/range');
      const node = frame.node;
      if (rest[0] === 'if') {
        if (node.k !== 'if') throw new Error('template: else if after with/range');
        const branch = { cond: parsePipeline(rest.slice(1)), body: [] as TNode[] };
        node.branches.push(branch);
        out = branch.body;
      } else out = node.otherwise;
    } else if (head === 'end') {
      const done = stack.pop();
      if (!done) throw new Error('template: unexpected end');
      if (done.node.k === 'define') defines.set(done.node.name, done.node.body);
      out = done.target;
    } else if (head === 'template' || head === 'block' || head === 'break' || head === 'continue') {
      throw new Error(`template: ${head} is not supported by the stand-in renderer; use include`);
    } else out.push({ k: 'out', pipe: parsePipeline(tokens) });
  }
  if (stack.length) throw new Error('template: missing end');
  return top;
}

class Scope {
  private readonly vars = new Map<string, unknown>();
  constructor(private readonly parent?: Scope) {}
  declare(name: string, value: unknown) {
    this.vars.set(name, value);
  }
  assign(name: string, value: unknown) {
    this.owner(name).vars.set(name, value);
  }
  get(name: string): unknown {
    return this.owner(name).vars.get(name);
  }
  private owner(name: string): Scope {
    if (this.vars.has(name)) return this;
    if (!this.parent) throw new Error(`template: undefined variable ${name}`);
    return this.parent.owner(name);
  }
}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

/** Helm's toYaml (sigs.k8s.io/yaml): keys sorted, no trailing newline. */
const toYaml = (v: unknown) => stringify(v ?? null, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');

/** Go's eq and ne refuse to compare basic values of different kinds ("incompatible types for comparison"). */
function goEqual(a: unknown, b: unknown): boolean {
  if (a !== undefined && b !== undefined && typeof a !== typeof b) throw new Error(`template: incompatible types for comparison: ${String(a)}, ${String(b)}`);
  return a === b;
}

function printf(format: string, ...args: unknown[]): string {
  let i = 0;
  return format.replace(/%[sdv%]/g, (spec) => (spec === '%%' ? '%' : String(args[i++])));
}

class Renderer {
  readonly defines = new Map<string, TNode[]>();
  private readonly files = new Map<string, TNode[]>();

  constructor(templates: Record<string, string>) {
    for (const [name, src] of Object.entries(templates)) this.files.set(name, parseTemplate(src, this.defines));
  }

  renderFile(name: string, rootContext: Dict): string {
    const nodes = this.files.get(name);
    if (!nodes) throw new Error(`no template ${name}`);
    const scope = new Scope();
    scope.declare('$', rootContext);
    return this.exec(nodes, rootContext, scope);
  }

  private exec(nodes: TNode[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      switch (node.k) {
        case 'text':
          out += node.text;
          break;
        case 'out': {
          const value = this.pipeline(node.pipe, dot, scope);
          if (!node.pipe.decl) out += value === undefined || value === null ? '' : String(value);
          break;
        }
        case 'if': {
          const inner = new Scope(scope);
          const branch = node.branches.find((b) => truthy(this.pipeline(b.cond, dot, inner)));
          out += this.exec(branch ? branch.body : node.otherwise, dot, inner);
          break;
        }
        case 'with': {
          const inner = new Scope(scope);
          const value = this.pipeline(node.pipe, dot, inner);
          out += truthy(value) ? this.exec(node.body, value, inner) : this.exec(node.otherwise, dot, inner);
          break;
        }
        case 'range': {
          const { decl, ...rest } = node.pipe;
          const value = this.pipeline(rest, dot, scope);
          // Go ranges over a map in sorted key order.
          const entries: [unknown, unknown][] = Array.isArray(value)
            ? value.map((v, i) => [i, v])
            : isDict(value)
              ? Object.keys(value).sort().map((k) => [k, value[k]])
              : value === undefined || value === null
                ? []
                : assert.fail(`template: range over ${typeof value}`);
          if (entries.length === 0) out += this.exec(node.otherwise, dot, scope);
          for (const [key, item] of entries) {
            const inner = new Scope(scope);
            if (decl?.vars.length === 1) inner.declare(decl.vars[0] as string, item);
            if (decl?.vars.length === 2) {
              inner.declare(decl.vars[0] as string, key);
              inner.declare(decl.vars[1] as string, item);
            }
            out += this.exec(node.body, item, inner);
          }
          break;
        }
      }
    }
    return out;
  }

  private pipeline(pipe: Pipeline, dot: unknown, scope: Scope): unknown {
    let value: unknown;
    let piped = false;
    for (const cmd of pipe.cmds) {
      value = this.command(cmd, dot, scope, piped ? [value] : []);
      piped = true;
    }
    if (pipe.decl) {
      const [name] = pipe.decl.vars;
      if (pipe.decl.vars.length !== 1 || !name) throw new Error('template: multiple variables outside range');
      if (pipe.decl.op === ':=') scope.declare(name, value);
      else scope.assign(name, value);
    }
    return value;
  }

  private command(cmd: Operand[], dot: unknown, scope: Scope, piped: unknown[]): unknown {
    const [head, ...rest] = cmd as [Operand, ...Operand[]];
    if (head.t !== 'fn') {
      if (rest.length || piped.length) throw new Error('template: cannot give arguments to a non-function');
      return this.operand(head, dot, scope);
    }
    const args = [...rest.map((o) => this.operand(o, dot, scope)), ...piped];
    return this.call(head.name, args);
  }

  private operand(op: Operand, dot: unknown, scope: Scope): unknown {
    if (op.t === 'lit') return op.v;
    if (op.t === 'sub') return this.pipeline(op.pipe, dot, scope);
    if (op.t === 'fn') return this.call(op.name, []);
    let value = op.base === null ? dot : scope.get(op.base);
    for (const key of op.path) {
      // Go: a field of a missing map entry is "nil pointer evaluating interface {}.key", an error.
      if (!isDict(value)) throw new Error(`template: nil pointer evaluating .${key} (${op.path.join('.')})`);
      value = value[key];
    }
    return value;
  }

  private call(name: string, a: unknown[]): unknown {
    const str = (i: number) => String(a[i] ?? '');
    switch (name) {
      case 'include': {
        const body = this.defines.get(str(0));
        if (!body) throw new Error(`template: no template "${str(0)}"`);
        const scope = new Scope();
        scope.declare('$', a[1]);
        return this.exec(body, a[1], scope);
      }
      case 'default':
        return truthy(a[1]) ? a[1] : a[0];
      case 'empty':
        return !truthy(a[0]);
      case 'required':
        if (!truthy(a[1])) throw new Error(`template: fail: ${str(0)}`);
        return a[1];
      case 'fail':
        throw new Error(`template: fail: ${str(0)}`);
      case 'and':
        return a.find((v) => !truthy(v)) ?? a.at(-1);
      case 'or':
        return a.find((v) => truthy(v)) ?? a.at(-1);
      case 'not':
        return !truthy(a[0]);
      case 'eq':
        return a.slice(1).some((b) => goEqual(a[0], b));
      case 'ne':
        return !goEqual(a[0], a[1]);
      case 'gt':
        return (a[0] as number) > (a[1] as number);
      case 'int': {
        const n = Number(a[0] ?? 0);
        if (!Number.isFinite(n)) throw new Error(`template: int of ${str(0)}`);
        return Math.trunc(n);
      }
      case 'add':
        return a.reduce((sum: number, v) => sum + Number(v), 0);
      case 'lower':
        return str(0).toLowerCase();
      case 'quote':
        return JSON.stringify(str(0));
      case 'trunc':
        return str(1).slice(0, a[0] as number);
      case 'trimSuffix':
        return str(1).endsWith(str(0)) ? str(1).slice(0, -str(0).length || undefined) : str(1);
      case 'replace':
        return str(2).split(str(0)).join(str(1));
      case 'contains':
        return str(1).includes(str(0));
      case 'printf':
        return printf(str(0), ...a.slice(1));
      case 'join':
        return (a[1] as unknown[]).map(String).join(str(0));
      case 'nindent':
      case 'indent': {
        const pad = ' '.repeat(a[0] as number);
        const text = str(1).split('\n').map((line) => pad + line).join('\n');
        return name === 'nindent' ? `\n${text}` : text;
      }
      case 'toYaml':
        return toYaml(a[0]);
      case 'sha256sum':
        return createHash('sha256').update(str(0)).digest('hex');
      case 'list':
        return [...a];
      case 'dict': {
        const d: Dict = {};
        for (let i = 0; i < a.length; i += 2) d[str(i)] = a[i + 1];
        return d;
      }
      case 'append':
        return [...((a[0] as unknown[] | undefined) ?? []), a[1]];
      case 'has':
        return (a[1] as unknown[]).includes(a[0]);
      case 'hasKey':
        return isDict(a[0]) && Object.hasOwn(a[0], str(1));
      case 'set':
        (a[0] as Dict)[str(1)] = a[2];
        return a[0];
      case 'deepCopy':
        return structuredClone(a[0]);
      case 'dig': {
        // dig "k1" "k2" DEFAULT DICT
        let value: unknown = a.at(-1);
        for (const key of a.slice(0, -2)) {
          if (!isDict(value) || !(String(key) in value)) return a.at(-2);
          value = value[String(key)];
        }
        return value;
      }
      default:
        throw new Error(`template: function "${name}" is not implemented by the stand-in renderer`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chart plumbing: values, rendering, manifests.

const templateFiles = readdirSync(templatesDir).filter((f) => /\.(ya?ml|tpl|txt)$/.test(f));
const templates = Object.fromEntries(templateFiles.map((f) => [f, read(join(templatesDir, f))]));
const chart = parse(read(join(chartDir, 'Chart.yaml'))) as Dict;
const defaultValues = parse(read(join(chartDir, 'values.yaml'))) as Dict;
const valuesSchema = JSON.parse(read(join(chartDir, 'values.schema.json'))) as Dict;

/** Helm's value merge: maps merge key by key, anything else (lists included) is replaced. */
function mergeValues(base: unknown, override: unknown): unknown {
  if (!isDict(base) || !isDict(override)) return structuredClone(override);
  const out: Dict = structuredClone(base);
  for (const [k, v] of Object.entries(override)) out[k] = mergeValues(base[k], v);
  return out;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Dict;
  [key: string]: unknown;
}

function render(overrides: Dict = {}) {
  const values = mergeValues(defaultValues, overrides) as Dict;
  const context: Dict = {
    Values: values,
    Release: { Name: 'edge', Namespace: 'gateways', Service: 'Helm', IsInstall: true },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const renderer = new Renderer(templates);
  const manifests: { file: string; objects: K8sObject[] }[] = [];
  for (const file of templateFiles.filter((f) => !f.startsWith('_') && f.endsWith('.yaml'))) {
    const text = renderer.renderFile(file, context);
    const objects: K8sObject[] = [];
    for (const doc of parseAllDocuments(text)) {
      assert.deepEqual(doc.errors, [], `${file} does not parse as YAML:\n${text}`);
      const object = doc.toJS() as K8sObject | null;
      if (object !== null) objects.push(object);
    }
    manifests.push({ file, objects });
  }
  const all = manifests.flatMap((m) => m.objects);
  const one = (kind: string, name?: string) => {
    const found = all.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
    return found[0] as K8sObject;
  };
  return { values, manifests, all, one, notes: renderer.renderFile('NOTES.txt', context) };
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateValues = ajv.compile(valuesSchema);

const examplePolicies = {
  app: {
    version: 'v1',
    policies: [{ name: 'app-needs-mtls', action: 'ALLOW', routes: ['app'], rules: [{ from: [{ source: { trustDomains: ['example.org'] } }] }] }],
  },
};
const egressOn = {
  egress: { enabled: true, networkPolicy: { workloadNamespaces: ['shop', 'payments'] } },
  config: {
    egress: {
      listener: { address: '0.0.0.0', port: 3128 },
      allow: [{ name: 'stripe', identities: ['spiffe://example.org/ns/shop/*'], hosts: ['api.stripe.com'] }],
    },
  },
};

type Container = {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  env?: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[];
  securityContext: Dict;
  livenessProbe: { httpGet: { path: string; port: string; scheme: string } };
  readinessProbe: { httpGet: { path: string; port: string; scheme: string } };
  startupProbe: { httpGet: { path: string; port: string; scheme: string } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
};
// Fields of core/v1 PodSpec and Container that the chart may set.
const POD_SPEC_FIELDS = new Set([
  'serviceAccountName', 'automountServiceAccountToken', 'enableServiceLinks', 'terminationGracePeriodSeconds',
  'priorityClassName', 'imagePullSecrets', 'securityContext', 'containers', 'volumes', 'affinity',
  'topologySpreadConstraints', 'nodeSelector', 'tolerations',
]);
const CONTAINER_FIELDS = new Set([
  'name', 'image', 'imagePullPolicy', 'args', 'ports', 'env', 'startupProbe', 'livenessProbe', 'readinessProbe',
  'lifecycle', 'resources', 'securityContext', 'volumeMounts',
]);
function podSpec(deployment: K8sObject) {
  const template = (deployment.spec as { template: { metadata: { labels: Dict; annotations?: Dict }; spec: Dict } }).template;
  const spec = template.spec as {
    securityContext: Dict;
    automountServiceAccountToken: boolean;
    terminationGracePeriodSeconds: number;
    containers: Container[];
    volumes: { name: string; configMap?: { items: { key: string; path: string }[] }; secret?: { secretName: string; defaultMode: number }; emptyDir?: Dict }[];
    affinity?: Dict;
    topologySpreadConstraints?: Dict[];
  };
  return { metadata: template.metadata, spec, container: spec.containers[0] as Container };
}

// ---------------------------------------------------------------------------------------------------------------

describe('the stand-in renderer follows text/template', () => {
  const cases: [string, string, Dict, string][] = [
    ['trim markers eat whitespace and newlines', 'a  {{- "b" -}}  \n c', {}, 'abc'],
    ['nindent', 'k:\n  {{- "x: 1\\ny: 2" | nindent 2 }}', {}, 'k:\n  x: 1\n  y: 2'],
    ['else if chain', '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}', { b: 1 }, 'B'],
    ['range over a map is in key order', '{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } }, 'a=1;b=2;'],
    ['empty map is false', '{{ if .m }}yes{{ else }}no{{ end }}', { m: {} }, 'no'],
    ['assignment reaches the outer variable', '{{ $x := 1 }}{{ range .l }}{{ $x = . }}{{ end }}{{ $x }}', { l: [2, 3] }, '3'],
    ['with rebinds dot', '{{ with .a }}{{ .b }}{{ end }}', { a: { b: 'z' } }, 'z'],
    ['default and parentheses', '{{ default (printf "%s-%d" "n" 1) .missing }}', {}, 'n-1'],
  ];
  for (const [name, src, values, expected] of cases) {
    test(name, () => {
      assert.equal(new Renderer({ 't.yaml': src }).renderFile('t.yaml', values), expected);
    });
  }
  test('a field of a missing value is an error, as in Go', () => {
    assert.throws(() => new Renderer({ 't.yaml': '{{ .a.b }}' }).renderFile('t.yaml', {}), /nil pointer/);
  });
  test('comparing a number with a string is an error, as in Go', () => {
    assert.throws(() => new Renderer({ 't.yaml': '{{ eq 1 "1" }}' }).renderFile('t.yaml', {}), /incompatible types/);
  });
});

describe('helm chart', () => {
  test('Chart.yaml is apiVersion v2 with a version and appVersion', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'portcullis');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+/);
    assert.match(String(chart.appVersion), /^\d+\.\d+\.\d+/);
  });

  test('every .Values path in the templates exists in values.yaml', () => {
    const missing: string[] = [];
    for (const [file, text] of Object.entries(templates)) {
      for (const match of text.matchAll(/\$?\.Values((?:\.[A-Za-z0-9_]+)+)/g)) {
        let value: unknown = defaultValues;
        for (const key of (match[1] as string).slice(1).split('.')) {
          value = isDict(value) && Object.hasOwn(value, key) ? value[key] : undefined;
          if (value === undefined) {
            missing.push(`${file}: ${match[0]}`);
            break;
          }
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('values.yaml passes values.schema.json', () => {
    assert.ok(validateValues(defaultValues), JSON.stringify(validateValues.errors, null, 2));
  });

  const badValues: [string, Dict][] = [
    ['an unknown top-level key', { replicas: 3 }],
    ['an unknown nested key', { egress: { enable: true } }],
    ['a port out of range', { ports: { admin: 70000 } }],
    ['a config of another version', { config: { version: 'v2' } }],
    ['a Redis URL of another scheme', { redis: { url: 'http://redis:6379' } }],
    ['both a Redis URL and an existing Secret', { redis: { url: 'redis://redis:6379', existingSecret: 'redis' } }],
    ['a certificate Secret name with capitals', { certificates: [{ name: 'edge', secretName: 'Edge-TLS' }] }],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }],
    ['an image digest that is not sha256', { image: { digest: 'latest' } }],
    ['a policy file name with a slash', { policies: { 'a/b': { version: 'v1', policies: [] } } }],
    ['anti-affinity of an unknown kind', { podAntiAffinity: 'strict' }],
  ];
  for (const [name, override] of badValues) {
    test(`values.schema.json refuses ${name}`, () => {
      assert.equal(validateValues(mergeValues(defaultValues, override)), false);
    });
  }

  test('the default config and example policies are valid gateway configuration', () => {
    const { one } = render({ policies: examplePolicies });
    const data = one('ConfigMap').data as Record<string, string>;
    const config = parse(data['portcullis.yaml'] as string) as Dict;
    const validateConfig = new Ajv({ allErrors: true, strict: false }).compile(ConfigSchema);
    assert.ok(validateConfig(config), JSON.stringify(validateConfig.errors, null, 2));
    assert.deepEqual(config.policyFiles, ['policies/app.yaml']);
    const validatePolicies = new Ajv({ allErrors: true, strict: false }).compile(PolicyFileSchema);
    const policyFile = parse(data['policy-app.yaml'] as string);
    assert.ok(validatePolicies(policyFile), JSON.stringify(validatePolicies.errors, null, 2));
    assert.deepEqual(policyFile, examplePolicies.app);
  });

  test('default values render to parseable manifests of the expected kinds', () => {
    const { all, notes } = render();
    assert.deepEqual(all.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ConfigMap/edge-portcullis',
      'Deployment/edge-portcullis',
      'NetworkPolicy/edge-portcullis',
      'PodDisruptionBudget/edge-portcullis',
      'Service/edge-portcullis',
      'Service/edge-portcullis-admin',
      'ServiceAccount/edge-portcullis',
    ]);
    for (const object of all) {
      assert.ok(object.apiVersion && object.metadata.name, `${object.kind} has apiVersion and name`);
      assert.equal(object.metadata.namespace, 'gateways');
      assert.equal(object.metadata.labels?.['app.kubernetes.io/instance'], 'edge');
    }
    assert.match(notes, /every request is denied/);
    assert.match(notes, /each replica counts rate limits on its own/);
  });

  test('every optional part renders when switched on', () => {
    const { all, one } = render({
      ...egressOn,
      autoscaling: { enabled: true },
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      redis: { url: 'redis://:secret@redis.data:6379' },
      restartOnConfigChange: true,
      podAntiAffinity: 'hard',
      admin: { tokenSecret: 'portcullis-admin' },
      policies: examplePolicies,
    });
    const kinds = all.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort();
    for (const expected of [
      'HorizontalPodAutoscaler/gateways/edge-portcullis',
      'ServiceMonitor/gateways/edge-portcullis',
      'Service/gateways/edge-portcullis-egress',
      'Secret/gateways/edge-portcullis-redis',
      'NetworkPolicy/shop/edge-portcullis-egress-only',
      'NetworkPolicy/payments/edge-portcullis-egress-only',
    ]) {
      assert.ok(kinds.includes(expected), `${expected} in ${kinds.join(', ')}`);
    }

    const hpa = one('HorizontalPodAutoscaler');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual((hpa.spec as Dict).scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'edge-portcullis' });
    const deployment = one('Deployment');
    assert.equal((deployment.spec as Dict).replicas, undefined, 'the HPA owns the replica count');

    const { metadata, spec, container } = podSpec(deployment);
    assert.match(String(metadata.annotations?.['checksum/config']), /^[0-9a-f]{64}$/);
    assert.deepEqual(container.env, [
      { name: 'PORTCULLIS_REDIS_URL', valueFrom: { secretKeyRef: { name: 'edge-portcullis-redis', key: 'url' } } },
    ]);
    assert.deepEqual(one('Secret').stringData, { url: 'redis://:secret@redis.data:6379' });
    const config = parse((one('ConfigMap').data as Record<string, string>)['portcullis.yaml'] as string) as Dict;
    assert.deepEqual(config.redis, {}, 'redis.url comes from PORTCULLIS_REDIS_URL');
    assert.ok(container.ports.some((p) => p.name === 'egress' && p.containerPort === 3128));
    assert.ok(container.volumeMounts.some((m) => m.mountPath === '/etc/portcullis-admin' && m.readOnly));
    assert.ok('requiredDuringSchedulingIgnoredDuringExecution' in ((spec.affinity as Dict).podAntiAffinity as Dict));

    const monitor = one('ServiceMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack');
    const adminService = one('Service', 'edge-portcullis-admin');
    const selector = (monitor.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    for (const [k, v] of Object.entries(selector)) assert.equal(adminService.metadata.labels?.[k], v, `admin Service has ${k}`);
    assert.equal((adminService.spec as Dict).type, 'ClusterIP');
  });

  test('the config is mounted as a directory from the ConfigMap, never with subPath', () => {
    const { one } = render({ policies: examplePolicies });
    const { spec, container, metadata } = podSpec(one('Deployment'));
    const mount = container.volumeMounts.find((m) => m.name === 'config');
    assert.deepEqual(mount, { name: 'config', mountPath: '/etc/portcullis', readOnly: true });
    assert.ok(container.volumeMounts.every((m) => m.subPath === undefined));
    const volume = spec.volumes.find((v) => v.name === 'config');
    assert.deepEqual(volume?.configMap?.items, [
      { key: 'portcullis.yaml', path: 'portcullis.yaml' },
      { key: 'policy-app.yaml', path: 'policies/app.yaml' },
    ]);
    assert.deepEqual(container.args, ['run', '-c', '/etc/portcullis/portcullis.yaml', '--state-dir', '/var/run/portcullis']);
    assert.equal(metadata.annotations?.['checksum/config'], undefined, 'restartOnConfigChange is opt-in');
  });

  test('certificates come from Secrets, read-only and not world-readable', () => {
    const { one } = render();
    const { spec, container } = podSpec(one('Deployment'));
    for (const [name, secretName] of [['edge', 'portcullis-edge-tls'], ['svid', 'portcullis-svid']]) {
      assert.deepEqual(container.volumeMounts.find((m) => m.name === `cert-${name}`), {
        name: `cert-${name}`,
        mountPath: `/etc/portcullis-certs/${name}`,
        readOnly: true,
      });
      assert.deepEqual(spec.volumes.find((v) => v.name === `cert-${name}`)?.secret, { secretName, defaultMode: 0o440 });
    }
  });

  test('the Deployment runs non-root, read-only, without privileges, with probes on the admin port', () => {
    const text = templates['deployment.yaml'] as string;
    for (const needle of [
      'runAsNonRoot: true',
      'runAsUser: 10001',
      'readOnlyRootFilesystem: true',
      'allowPrivilegeEscalation: false',
      'type: RuntimeDefault',
      'automountServiceAccountToken: false',
      'livenessProbe:',
      'readinessProbe:',
    ]) {
      assert.ok(text.includes(needle), `deployment.yaml has ${needle}`);
    }
    assert.match(text, /capabilities:\s+drop:\s+- ALL/);

    const { one } = render();
    const { spec, container } = podSpec(one('Deployment'));
    assert.deepEqual(spec.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(one('ServiceAccount').automountServiceAccountToken, false);
    // A block indented one level too shallow still parses, as stray keys of the parent: only known fields allowed.
    assert.deepEqual(Object.keys(spec).filter((k) => !POD_SPEC_FIELDS.has(k)), []);
    assert.deepEqual(Object.keys(container).filter((k) => !CONTAINER_FIELDS.has(k)), []);
    assert.deepEqual((container as unknown as Dict).resources, defaultValues.resources);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'admin', scheme: 'HTTP' });
    assert.deepEqual(container.startupProbe.httpGet, { path: '/healthz', port: 'admin', scheme: 'HTTP' });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'admin', scheme: 'HTTP' });
    assert.ok(container.ports.some((p) => p.name === 'admin' && p.containerPort === 9901));
    // The only writable paths are emptyDirs.
    for (const path of ['/var/run/portcullis', '/tmp']) {
      const mount = container.volumeMounts.find((m) => m.mountPath === path);
      assert.ok(spec.volumes.find((v) => v.name === mount?.name)?.emptyDir, `${path} is an emptyDir`);
    }
  });

  test('an HTTPS admin plane is probed and scraped over HTTPS', () => {
    const tls = { certificate: { cert: '/etc/portcullis-certs/svid/tls.crt', key: '/etc/portcullis-certs/svid/tls.key' }, allowedSpiffeIds: ['spiffe://example.org/ns/ops/sa/admin'] };
    const { one } = render({ config: { admin: { tls } }, serviceMonitor: { enabled: true, tlsConfig: { insecureSkipVerify: true } } });
    const { container } = podSpec(one('Deployment'));
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) assert.equal(probe.httpGet.scheme, 'HTTPS');
    const endpoint = (one('ServiceMonitor').spec as { endpoints: Dict[] }).endpoints[0];
    assert.equal(endpoint?.scheme, 'https');
    assert.deepEqual(endpoint?.tlsConfig, { insecureSkipVerify: true });
  });

  test('the grace period outlasts the preStop pause plus the drain', () => {
    const { one, values } = render({ shutdown: { preStopSleepSeconds: 7, drainSeconds: 40 } });
    const { spec, container } = podSpec(one('Deployment'));
    const shutdown = values.shutdown as { preStopSleepSeconds: number; drainSeconds: number };
    assert.ok(spec.terminationGracePeriodSeconds > shutdown.preStopSleepSeconds + shutdown.drainSeconds);
    assert.deepEqual(container.lifecycle.preStop.exec.command, ['sleep', '7']);
  });

  test('replicas spread over zones and prefer distinct nodes by default', () => {
    const { one } = render();
    const { spec } = podSpec(one('Deployment'));
    const selector = { 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/instance': 'edge' };
    assert.deepEqual(spec.topologySpreadConstraints, [
      { topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
    ]);
    const preferred = ((spec.affinity as Dict).podAntiAffinity as Dict).preferredDuringSchedulingIgnoredDuringExecution;
    assert.deepEqual(preferred, [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }]);
    assert.deepEqual((one('PodDisruptionBudget').spec as Dict).selector, { matchLabels: selector });
  });

  test('the gateway NetworkPolicy opens only its ports and never the metadata address', () => {
    const { one } = render(egressOn);
    const policy = one('NetworkPolicy', 'edge-portcullis');
    const spec = policy.spec as { policyTypes: string[]; ingress: { ports: { port: number }[]; from?: Dict[] }[]; egress: { to: Dict[] }[] };
    assert.deepEqual(spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(spec.ingress.map((r) => r.ports.map((p) => p.port)), [[8443], [9901], [3128]]);
    assert.equal(spec.ingress[0]?.from, undefined, 'the edge port is open to any source by default');
    assert.deepEqual(spec.ingress[1]?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    assert.deepEqual(spec.ingress[2]?.from, [
      { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop', 'payments'] }] } },
    ]);
    assert.deepEqual(spec.egress, [
      {
        to: [
          { namespaceSelector: {} },
          { ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } },
          { ipBlock: { cidr: '::/0', except: ['fd00:ec2::254/128'] } },
        ],
      },
    ]);
  });

  test('egress mode: workloads leave their namespace only through the gateway and DNS', () => {
    const { all } = render(egressOn);
    const policies = all.filter((o) => o.metadata.name === 'edge-portcullis-egress-only');
    assert.deepEqual(policies.map((p) => p.metadata.namespace), ['shop', 'payments']);
    for (const policy of policies) {
      assert.deepEqual(policy.spec, {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gateways' } },
                podSelector: { matchLabels: { 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/instance': 'edge' } },
              },
            ],
            ports: [{ port: 3128, protocol: 'TCP' }],
          },
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
              },
            ],
            ports: [
              { port: 53, protocol: 'UDP' },
              { port: 53, protocol: 'TCP' },
            ],
          },
          { to: [{ podSelector: {} }] },
        ],
      });
    }
    const service = all.find((o) => o.kind === 'Service' && o.metadata.name === 'edge-portcullis-egress');
    assert.equal((service?.spec as Dict).type, 'ClusterIP');
  });

  const refused: [string, Dict, RegExp][] = [
    ['an admin plane bound to loopback', { config: { admin: { address: '127.0.0.1' } } }, /config\.admin\.address is 127\.0\.0\.1/],
    ['an admin port other than ports.admin', { ports: { admin: 9902 } }, /config\.admin\.port must equal ports\.admin/],
    ['no listener on ports.https', { ports: { https: 9443 } }, /no listener in config\.listeners uses ports\.https/],
    ['egress.enabled without config.egress', { egress: { enabled: true, networkPolicy: { workloadNamespaces: ['shop'] } } }, /egress\.enabled needs config\.egress/],
    ['config.egress while egress is disabled', { config: egressOn.config }, /config\.egress is set but egress\.enabled is false/],
    [
      'an egress proxy on loopback',
      { ...egressOn, config: { egress: { ...egressOn.config.egress, listener: { address: '127.0.0.1', port: 3128 } } } },
      /egress\.listener\.address must be 0\.0\.0\.0/,
    ],
    ['egress mode naming no workload namespace', { ...egressOn, egress: { enabled: true, networkPolicy: { workloadNamespaces: [] } } }, /workloadNamespaces must name/],
    ['a config.redis with no URL anywhere', { config: { redis: {} } }, /config\.redis has no url/],
  ];
  for (const [name, override, message] of refused) {
    test(`rendering refuses ${name}`, () => {
      assert.throws(() => render(override), message);
    });
  }
});

describe('Dockerfile', () => {
  const dockerfile = read(join(root, 'Dockerfile'));
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = instructions.filter((l) => /^FROM /i.test(l));
  const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1) as string));

  test('is a multi-stage build on node 24 whose runtime stage copies only build results', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const from of stages) assert.match(from, /^FROM node:24-bookworm-slim\b/);
    assert.ok(instructions.some((l) => /^RUN npm ci\b(?!.*--omit=dev)/.test(l)), 'the build stage installs dev dependencies');
    assert.ok(instructions.some((l) => /^RUN npm run build\b/.test(l)));
    assert.ok(instructions.some((l) => /^RUN npm ci .*--omit=dev/.test(l)), 'production dependencies with --omit=dev');
    assert.ok(runtime.some((l) => /^COPY --from=\S+ \S*\/dist /.test(l)));
    assert.ok(runtime.some((l) => /^COPY --from=\S+ \S*\/node_modules /.test(l)));
    assert.ok(!runtime.some((l) => /^RUN npm /.test(l)), 'npm never runs in the runtime stage');
  });

  test('runs as uid 10001 with a node-based HEALTHCHECK on the admin port', () => {
    const user = runtime.filter((l) => /^USER /.test(l)).at(-1);
    assert.match(String(user), /^USER 10001(:10001)?$/);
    const healthcheck = runtime.find((l) => /^HEALTHCHECK /.test(l));
    assert.match(String(healthcheck), /CMD \["node", "-e", .*http:\/\/127\.0\.0\.1:9901\/healthz/);
    assert.ok(runtime.includes('ENV NODE_ENV=production'));
    assert.ok(runtime.includes('STOPSIGNAL SIGTERM'));
    assert.ok(runtime.includes('EXPOSE 8443 9901'));
    assert.ok(runtime.includes('ENTRYPOINT ["node", "dist/gateway/cli.js"]'));
    assert.match(String(runtime.find((l) => /^CMD /.test(l))), /^CMD \["run", "-c", "\/etc\/portcullis\/portcullis\.yaml", "--state-dir", "\/var\/run\/portcullis"\]$/);
  });

  test('.dockerignore keeps local state, tests and secrets out of the build context', () => {
    const ignored = read(join(root, '.dockerignore')).split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.portcullis', '.git', 'test', '**/*.pem', '**/*.key']) assert.ok(ignored.includes(entry), entry);
  });
});
