// Turns the measured rounds into the Markdown table of issue #6: medians over rounds, requests per second
// of the proxy's own CPU ("per core"), and the ratio of that to the scenario's baseline peer.
import { SCENARIOS, type PeerName, type ScenarioId } from './scenarios.js';
import type { Usage } from './proc.js';
import type { LoadResult } from './wrk.js';

export interface Sample {
  scenario: ScenarioId;
  peer: PeerName;
  /** 1-based; a variant and its baseline scenario are compared round by round too. */
  round: number;
  load: LoadResult;
  usage: Usage;
}

export interface Cell {
  scenario: ScenarioId;
  peer: PeerName;
  rounds: number;
  rps: number;
  perCore: number;
  p50Ms: number;
  p99Ms: number;
  cpuPercent: number;
  rssMb: number;
  errors: number;
  ratio: number | undefined;
  /** Against a baseline scenario of the same peer: the ratio of each round's pair, lowest, median and highest. */
  roundRatios: { low: number; median: number; high: number } | undefined;
  caveat: string | undefined;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Requests per second of the proxy's own CPU: the bench's figure. */
export const perCore = (s: Pick<Sample, 'load' | 'usage'>) => s.load.requests / Math.max(s.usage.cpuSeconds, 0.01);

export function summarize(samples: readonly Sample[], caveats: (scenario: ScenarioId, peer: PeerName) => string | undefined): Cell[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const key = `${s.scenario}\0${s.peer}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const cells: Cell[] = [...groups.values()].map((g) => {
    const { scenario, peer } = g[0]!;
    return {
      scenario,
      peer,
      rounds: g.length,
      rps: median(g.map((s) => s.load.rps)),
      perCore: median(g.map(perCore)),
      p50Ms: median(g.map((s) => s.load.p50Ms)),
      p99Ms: median(g.map((s) => s.load.p99Ms)),
      cpuPercent: median(g.map((s) => (100 * s.usage.cpuSeconds) / s.load.durationS)),
      rssMb: Math.max(...g.map((s) => s.usage.peakRssBytes)) / 2 ** 20,
      errors: g.reduce((n, s) => n + s.load.errors, 0),
      ratio: undefined,
      roundRatios: undefined,
      caveat: caveats(scenario, peer),
    };
  });
  for (const cell of cells) {
    const { baseline, baselineScenario = cell.scenario } = SCENARIOS[cell.scenario];
    const base = cells.find((c) => c.scenario === baselineScenario && c.peer === baseline);
    // A peer doing less work than the baseline (nginx without JWT) gets no ratio: it would mislead.
    if (base && !cell.caveat) cell.ratio = cell.perCore / base.perCore;
    if (base && cell.scenario !== baselineScenario) cell.roundRatios = pairedRatios(samples, cell, base);
  }
  return cells;
}

/** Per-core ratio of `cell` to `base` in each round both ran in: how steady the median ratio is. */
function pairedRatios(samples: readonly Sample[], cell: Pick<Cell, 'scenario' | 'peer'>, base: Pick<Cell, 'scenario' | 'peer'>): Cell['roundRatios'] {
  const ratios = roundRatios(samples, cell, base);
  if (ratios.length === 0) return undefined;
  return { low: Math.min(...ratios), median: median(ratios), high: Math.max(...ratios) };
}

function roundRatios(samples: readonly Sample[], cell: Pick<Cell, 'scenario' | 'peer'>, base: Pick<Cell, 'scenario' | 'peer'>): number[] {
  const ratios: number[] = [];
  for (const s of samples) {
    if (s.scenario !== cell.scenario || s.peer !== cell.peer) continue;
    const b = samples.find((o) => o.scenario === base.scenario && o.peer === base.peer && o.round === s.round);
    if (b) ratios.push(perCore(s) / perCore(b));
  }
  return ratios;
}

/**
 * A `--base` run's answer, per scenario: this build's per core over the base build's, round by round. The ratio of the
 * two medians moves with the machine by ±10 %; the per-round ratios (each pair measured back to back) and how many
 * rounds this build won say more about a change of a few percent.
 */
export function baseComparison(samples: readonly Sample[], order: readonly ScenarioId[]): string {
  const lines: string[] = [];
  for (const scenario of order) {
    const ratios = roundRatios(samples, { scenario, peer: 'portcullis' }, { scenario, peer: 'portcullis-base' });
    if (ratios.length === 0) continue;
    const ahead = ratios.filter((r) => r > 1).length;
    const byRound = ratios.map((r) => r.toFixed(2)).join(', ');
    lines.push(`| ${scenario} | ${median(ratios).toFixed(3)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} | ${ahead} of ${ratios.length} | ${byRound} |`);
  }
  if (lines.length === 0) return '';
  return ['| scenario | portcullis / portcullis-base per core, median of rounds | range | rounds ahead | by round |', '|---|---:|---|---|---|', ...lines].join('\n');
}

export const int = (n: number) => Math.round(n).toLocaleString('en-US');

export function markdownTable(cells: readonly Cell[], refused: readonly { scenario: ScenarioId; peer: PeerName; failures: string[] }[], order: readonly ScenarioId[], peers: readonly PeerName[]): string {
  const lines = [
    '| scenario | peer | req/s | req/s per core | p50 ms | p99 ms | CPU % | RSS MB | per core vs baseline |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const scenario of order) {
    const { baseline, baselineScenario } = SCENARIOS[scenario];
    const base = baselineScenario ? `${baseline} ${baselineScenario}` : baseline;
    for (const peer of peers) {
      const cell = cells.find((c) => c.scenario === scenario && c.peer === peer);
      const refusal = refused.find((r) => r.scenario === scenario && r.peer === peer);
      if (refusal) {
        lines.push(`| ${scenario} | ${peer} | refused: ${refusal.failures.join('; ').replaceAll('|', '\\|')} | | | | | | |`);
        continue;
      }
      if (!cell) continue;
      const name = cell.caveat ? `${peer} (${cell.caveat})` : peer;
      const errors = cell.errors ? ` (${cell.errors} errors)` : '';
      const rounds = cell.roundRatios && ` (by round ${cell.roundRatios.low.toFixed(2)}–${cell.roundRatios.high.toFixed(2)}, median ${cell.roundRatios.median.toFixed(2)})`;
      const ratio = cell.ratio === undefined ? '' : peer === baseline && !baselineScenario ? '1.00 (baseline)' : `${cell.ratio.toFixed(2)}× ${base}${rounds ?? ''}`;
      lines.push(
        `| ${scenario} | ${name} | ${int(cell.rps)}${errors} | ${int(cell.perCore)} | ${cell.p50Ms.toFixed(2)} | ${cell.p99Ms.toFixed(2)} | ${cell.cpuPercent.toFixed(0)} | ${cell.rssMb.toFixed(0)} | ${ratio} |`,
      );
    }
  }
  return lines.join('\n');
}

/** `--duration` values: `10s`, `1.5m`, or bare seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text);
  if (!match) throw new Error(`--duration: expected e.g. 10s or 1m, got ${text}`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}
