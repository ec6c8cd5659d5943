// `portcullis audit verify`: checks the chain across the given audit files (in the order given: rotated files
// oldest first, the live file last) and, with --checkpoints and --key, every signed checkpoint against it.
// Prints one line: ok, or the first record (file:line) where the chain or a checkpoint breaks; exits 1 then.
import fs from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import { verifyChain, verifyCheckpoints, type Located } from './chain.js';

export const AUDIT_HELP = `Usage: portcullis audit verify FILE [FILE...] [--checkpoints FILE]... [--key PUBLIC_KEY]

Checks the hash chain of the audit files, given oldest first (rotated files <file>.1, <file>.2, …, then <file>),
and with --checkpoints and --key (the Ed25519 public key, PEM) each signed checkpoint: its signature, and that
the records hold the signed hash at the signed sequence number. Prints "ok: …" and exits 0, or names the first
record or checkpoint that breaks (file:line) and exits 1. What it proves: docs/operations.md#audit-trail.`;

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

/** Exit code 2 for a command line it does not understand, as the other commands. */
export function runAuditCommand(args: readonly string[], io: Output): number {
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help') return io.out(AUDIT_HELP), 0;
  let parsed;
  try {
    if (sub !== 'verify') throw new Error(sub === undefined ? 'audit needs a subcommand' : `unknown audit subcommand: ${sub}`);
    parsed = parseArgs({
      args: [...rest],
      options: { checkpoints: { type: 'string', multiple: true }, key: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help) return io.out(AUDIT_HELP), 0;
    if (parsed.positionals.length === 0) throw new Error('verify needs at least one audit FILE');
    if ((parsed.values.key === undefined) !== (parsed.values.checkpoints === undefined)) throw new Error('--checkpoints and --key go together');
  } catch (err) {
    io.err(`portcullis: ${(err as Error).message}\n\n${AUDIT_HELP}`);
    return 2;
  }
  const { positionals: files, values } = parsed;
  try {
    return verify(files, values.checkpoints ?? [], values.key, io);
  } catch (err) {
    io.err(`portcullis audit verify: ${(err as Error).message}`);
    return 1;
  }
}

function verify(files: readonly string[], checkpointFiles: readonly string[], keyFile: string | undefined, io: Output): number {
  const chain = verifyChain(linesOf(files));
  if (!chain.ok) {
    const { at, expectedSeq, problem } = chain.broken;
    io.out(`FAIL ${at.file}:${at.line}: record ${expectedSeq}: ${problem}`);
    return 1;
  }
  const { records, firstSeq, head } = chain.summary;
  const span = records === 0 ? 'no records' : `${records} records (seq ${firstSeq}–${head.seq - 1}) in ${files.length} file${files.length === 1 ? '' : 's'}, chain intact`;
  if (keyFile === undefined) {
    io.out(`ok: ${span}; no checkpoints checked, so a rewritten chain or a cut tail would not show`);
    return 0;
  }
  const checked = verifyCheckpoints(linesOf(checkpointFiles), publicKey(keyFile), chain.summary);
  if (!checked.ok) {
    io.out(`FAIL ${checked.broken.at.file}:${checked.broken.at.line}: checkpoint: ${checked.broken.problem}`);
    return 1;
  }
  const last = checked.last ? `, the last at seq ${checked.last.seq} (${checked.last.time})` : '';
  io.out(`ok: ${span}; ${checked.covered} checkpoint${checked.covered === 1 ? '' : 's'} verified${last}`);
  return 0;
}

function publicKey(file: string): KeyObject {
  const key = createPublicKey(fs.readFileSync(file));
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: an Ed25519 public key is needed, this is ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

/** Every line of the files in order, numbered per file; a final newline ends the last line, it does not add one. */
function* linesOf(files: readonly string[]): Generator<Located> {
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    for (const [i, line] of lines.entries()) yield { file, line: i + 1, text: line };
  }
}
