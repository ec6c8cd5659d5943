// The real `helm` binary for the chart tests: $HELM_BIN (what .ci/run installs), else `helm` on the PATH.
// Tests that need it skip, with this message, when neither exists.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function findHelm(): string | undefined {
  for (const candidate of [process.env.HELM_BIN, 'helm']) {
    if (!candidate) continue;
    if (spawnSync(candidate, ['version', '--short'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return undefined;
}

export const HELM = findHelm();
export const NO_HELM = HELM ? false : 'helm not found (set HELM_BIN, or run .ci/run, which installs it): chart rendering not tested';

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

const valuesDir = mkdtempSync(join(tmpdir(), 'portcullis-helm-'));
let valuesFiles = 0;

/** Runs `helm ...args`, with `values` (if given) passed as a values file after the chart's own. */
export function helm(args: readonly string[], values?: unknown): HelmResult {
  if (!HELM) throw new Error('helm is not available');
  const extra: string[] = [];
  if (values !== undefined) {
    const file = join(valuesDir, `values-${valuesFiles++}.json`);
    writeFileSync(file, JSON.stringify(values));
    extra.push('-f', file);
  }
  const result = spawnSync(HELM, [...args, ...extra], { encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

