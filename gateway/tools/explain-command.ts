// `portcullis explain`: prints what the gateway would do with one request, step by step.
import fs from 'node:fs';
import { parse } from 'yaml';
import type { ExplainedDecision } from '../../policies/trace.js';
import type { LoadedConfig } from '../config/load.js';
import { ExplainInputError } from '../ingress/explain.js';
import { createDecisionRuntime, parseHeaderLine, parseRequestSpec, type Explanation, type RequestSpec } from './decide.js';

export interface ExplainFlags {
  file?: string;
  method?: string;
  url?: string;
  header?: string[];
  token?: string;
  claims?: string;
  peer?: string;
  'source-ip'?: string;
  listener?: string;
  sni?: string;
  egress?: boolean;
  identity?: string;
  host?: string;
  port?: string;
}

/** The request the flags (or the YAML file) describe; throws ExplainInputError when they describe none. */
export function requestFromFlags(flags: ExplainFlags): RequestSpec {
  if (flags.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(flags.file, 'utf8');
    } catch (err) {
      throw new ExplainInputError(`cannot read ${flags.file}: ${(err as Error).message}`);
    }
    return parseRequestSpec(parse(text), flags.file);
  }
  if (flags.egress) {
    return parseRequestSpec({ egress: { identity: flags.identity, host: flags.host, port: flags.port === undefined ? undefined : Number(flags.port) } }, '--egress');
  }
  let claims: unknown;
  if (flags.claims !== undefined) {
    try {
      claims = JSON.parse(flags.claims);
    } catch {
      throw new ExplainInputError('--claims takes a JSON object');
    }
  }
  const spec = {
    method: flags.method ?? 'GET',
    url: flags.url,
    headers: (flags.header ?? []).map((h, i) => parseHeaderLine(h, `-H[${i}]`).join(': ')),
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(claims !== undefined ? { claims } : {}),
    ...(flags.peer !== undefined ? { peer: flags.peer } : {}),
    ...(flags['source-ip'] !== undefined ? { sourceIp: flags['source-ip'] } : {}),
    ...(flags.listener !== undefined ? { listener: flags.listener } : {}),
    ...(flags.sni !== undefined ? { sni: flags.sni } : {}),
  };
  if (spec.url === undefined) throw new ExplainInputError('explain needs --url (or -f FILE, or --egress)');
  return parseRequestSpec(spec, 'the request');
}

/** Exit 0 when the request would be forwarded (or the egress connection allowed), 1 when refused. */
export async function runExplain(loaded: LoadedConfig, spec: RequestSpec, json: boolean, out: NodeJS.WritableStream): Promise<number> {
  const runtime = createDecisionRuntime(loaded.config);
  try {
    const explanation = await runtime.explain(spec);
    out.write(json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
    return allowed(explanation) ? 0 : 1;
  } finally {
    await runtime.close();
  }
}

export function allowed(e: Explanation): boolean {
  return e.kind === 'egress' ? e.decision.allowed : e.outcome.decision === 'forward';
}

export function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  if (e.kind === 'egress') {
    lines.push(`egress ${e.identity.principal} (${e.identity.kind}) → ${e.destination}`);
    lines.push(`decision: ${e.decision.allowed ? 'allow' : 'deny'} (${e.decision.reason}${e.decision.rule ? `: ${e.decision.rule}` : ''})`);
    if (e.decision.allowed) lines.push('note: the address guard still checks every resolved address at connect time');
  } else {
    for (const s of e.steps) {
      lines.push(`${s.step.padEnd(15)} ${s.ok ? 'ok  ' : 'FAIL'} ${s.detail}`);
      if (s.step === 'authorization' && e.authorization) lines.push(...formatPolicies(e.authorization));
    }
    const o = e.outcome;
    const by = o.policy ? ` by ${o.policy}/${o.rule ?? ''}` : '';
    lines.push(
      o.decision === 'forward'
        ? `decision: forward to '${o.upstream}' as ${o.path}${by}`
        : o.decision === 'redirect'
          ? `decision: redirect ${o.status} to ${o.location}${by}`
          : `decision: refuse ${o.status} ${o.code}${o.reason ? ` (${o.reason})` : ''}`,
    );
    if (e.forwarded) {
      lines.push(`headers added or set: ${e.forwarded.added.join(', ') || '(none)'}`);
      lines.push(`headers stripped: ${e.forwarded.stripped.join(', ') || '(none)'}`);
    }
  }
  if (e.hint) lines.push(`to allow it: ${e.hint}`);
  return `${lines.join('\n')}\n`;
}

function formatPolicies(authorization: ExplainedDecision): string[] {
  const lines = ['  policies, in evaluation order:'];
  for (const p of authorization.policies) {
    lines.push(`    ${p.action} ${p.policy}${p.mode === 'dry-run' ? ' (dry-run)' : ''}: ${p.matchedRule ? `matched ${p.matchedRule}` : 'no rule matched'}`);
    for (const r of p.rules) {
      lines.push(`      ${r.matched ? '✓' : '✗'} ${r.rule}${r.fields.length === 0 ? ' (matches every request)' : ''}`);
      for (const f of r.fields) {
        const actual = f.actual === undefined ? '(none)' : JSON.stringify(f.actual);
        lines.push(`          ${f.matched ? '✓' : '✗'} ${f.field}${f.key ? ` ${f.key}` : ''} ${JSON.stringify(f.values)}: request has ${actual}`);
      }
    }
  }
  return lines;
}
