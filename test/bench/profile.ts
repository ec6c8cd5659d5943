// Summary of a V8 .cpuprofile (node --cpu-prof): self time per function and per file, compiled
// locations mapped back to the TypeScript sources through the build's source maps, so the lead gets
// "gateway/ingress/pipeline.ts:123" rather than a dist/ line.
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** Microseconds between samples; V8 timestamps are CLOCK_MONOTONIC, the clock of process.hrtime. */
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A span of CLOCK_MONOTONIC microseconds (`process.hrtime.bigint() / 1000n`). */
export interface Window {
  fromUs: number;
  toUs: number;
}

export interface Hotspot {
  selfMs: number;
  share: number;
  name: string;
  location: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OWN_CODE = /^(gateway|policies|certs)\//;

function sourceMapper(): (url: string, line: number, column: number) => string {
  const maps = new Map<string, SourceMap | undefined>();
  return (url, line, column) => {
    if (!url.startsWith('file://')) return url ? `${url}:${line + 1}` : '';
    const file = fileURLToPath(url);
    if (!maps.has(file)) {
      let map: SourceMap | undefined;
      try {
        map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')));
      } catch {
        map = undefined;
      }
      maps.set(file, map);
    }
    const map = maps.get(file);
    const entry = map?.findEntry(line, column);
    if (entry && 'originalSource' in entry && entry.originalSource) {
      const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource);
      return `${path.relative(ROOT, source)}:${entry.originalLine + 1}`;
    }
    const relative = path.relative(ROOT, file);
    return `${relative.startsWith('..') ? file : relative}:${line + 1}`;
  };
}

/**
 * Self time by function (top `limit`) and by file, from the profile at `file`, counting only samples
 * inside `window` so start-up (module loading, config compilation) does not dilute the request path.
 * The main thread is idle while waiting on sockets; idle time is reported apart, shares are of busy time.
 */
export function summarizeProfile(file: string, window?: Window, limit = 25): { busyMs: number; idleMs: number; functions: Hotspot[]; files: Hotspot[]; inclusive: Hotspot[] } {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    // A sample stands for the time until the next one.
    const weight = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + weight);
  }
  const locate = sourceMapper();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const describe = new Map<number, { name: string; location: string }>();
  const frame = (id: number) => {
    let d = describe.get(id);
    if (!d) {
      const { functionName, url, lineNumber, columnNumber } = nodes.get(id)!.callFrame;
      d = { name: functionName || '(anonymous)', location: locate(url, lineNumber, columnNumber) };
      describe.set(id, d);
    }
    return d;
  };
  // Inclusive time of our own functions: where in the request path the self time above is spent.
  const byOwnFunction = new Map<string, Hotspot>();
  for (const [id, ms] of selfMs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { name, location } = frame(at);
      if (!OWN_CODE.test(location)) continue;
      const key = `${name} ${location}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const h = byOwnFunction.get(key) ?? { selfMs: 0, share: 0, name, location };
      h.selfMs += ms;
      byOwnFunction.set(key, h);
    }
  }
  const byFunction = new Map<string, Hotspot>();
  const byFile = new Map<string, Hotspot>();
  let busyMs = 0;
  let idleMs = 0;
  for (const [id, ms] of selfMs) {
    const { name, location } = frame(id);
    if (name === '(idle)') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const key = `${name} ${location}`;
    const f = byFunction.get(key) ?? { selfMs: 0, share: 0, name, location };
    f.selfMs += ms;
    byFunction.set(key, f);
    const fileKey = location.replace(/:\d+$/, '') || name;
    const g = byFile.get(fileKey) ?? { selfMs: 0, share: 0, name: fileKey, location: fileKey };
    g.selfMs += ms;
    byFile.set(fileKey, g);
  }
  const rank = (m: Map<string, Hotspot>, n: number) =>
    [...m.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, n)
      .map((h) => ({ ...h, share: busyMs ? h.selfMs / busyMs : 0 }));
  return { busyMs, idleMs, functions: rank(byFunction, limit), files: rank(byFile, 15), inclusive: rank(byOwnFunction, 20) };
}

export function profileMarkdown(summary: ReturnType<typeof summarizeProfile>): string {
  const row = (h: Hotspot) => `| ${h.selfMs.toFixed(0)} | ${(h.share * 100).toFixed(1)} % | \`${h.name}\` | ${h.location} |`;
  return [
    `Main thread during the load: ${(summary.busyMs / 1000).toFixed(2)} s busy, ${(summary.idleMs / 1000).toFixed(2)} s idle (shares are of busy time).`,
    '',
    '| self ms | share | function | location |',
    '|---:|---:|---|---|',
    ...summary.functions.map(row),
    '',
    '| self ms | share | file |',
    '|---:|---:|---|',
    ...summary.files.map((h) => `| ${h.selfMs.toFixed(0)} | ${(h.share * 100).toFixed(1)} % | ${h.name} |`),
    '',
    'Inclusive (self + callees) time of Portcullis functions:',
    '',
    '| total ms | share | function | location |',
    '|---:|---:|---|---|',
    ...summary.inclusive.map(row),
  ].join('\n');
}
