// Ajv's errors turned into the messages a person fixing a config wants: one per real mistake, naming the key.
import type { ErrorObject } from 'ajv';
import { isSecretField } from '../core/secrets.js';
import { escapePointer, isRecord } from './yaml-source.js';

export interface Finding {
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
export function humanize(errors: readonly ErrorObject[]): Finding[] {
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
      const shown = mayQuote(e.instancePath) ? `${JSON.stringify(e.data)} ` : 'the value ';
      return { path: e.instancePath, message: `${shown}does not match ${String(p.pattern)}${description ? ` (${String(description)})` : ''}` };
    }
    case 'minItems':
      return { path: e.instancePath, message: `must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}` };
    case 'minLength':
      return { path: e.instancePath, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` };
    default:
      return { path: e.instancePath, message: e.message ?? e.keyword };
  }
}

/**
 * Messages land in logs (CONFIG_REJECTED), `/reload` answers and `validate` output, so they never quote a value that
 * may be a credential: a header's `value` (`Authorization: Basic …` in a header modifier) or a field `/config` redacts
 * by name. Only pattern errors quote data; the others name its type at most.
 */
function mayQuote(pointer: string): boolean {
  const field = pointer.slice(pointer.lastIndexOf('/') + 1);
  return field !== 'value' && !isSecretField(field);
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

