// The `console` blocks of a doc, for tests that run them: each `$ command` with the lines printed after it.
import { readFileSync } from 'node:fs';

export function consoleBlocks(doc: string): string[] {
  return [...readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8').matchAll(/^```console\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
}

export function commands(block: string): { command: string; output: string }[] {
  const steps: { command: string; output: string[] }[] = [];
  for (const line of block.split('\n').slice(0, -1)) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
    else steps.at(-1)?.output.push(line);
  }
  return steps.map(({ command, output }) => ({ command, output: output.map((l) => `${l}\n`).join('') }));
}
