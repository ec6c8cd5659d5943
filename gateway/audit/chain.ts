// The audit chain, as pure functions: how a record is sealed into the chain, how a checkpoint is signed, and how a
// sequence of lines is verified. No I/O here; the writer is trail.ts, the command verify-command.ts.
//
// A record is one line: its canonical JSON (keys sorted, no spaces; RFC 8785 for the strings, integers and booleans
// records carry) with `seq` (0, 1, 2, … across every file of the trail) and `prev` (the previous record's `hash`; 64
// zeros for the first record ever), then `hash` appended as the last field: the SHA-256 of that canonical JSON.
// Appending (rather than sorting `hash` in) serializes each record once on the request path's thread. An
// edit inside a record breaks its own hash; a deleted, inserted or moved record breaks `seq` and `prev` at the
// first record out of place. A checkpoint signs `{seq, hash, time}` of the last record written with Ed25519: a
// chain rewritten from some record on no longer reaches the signed hash, and records cut from the end are missing
// from what the checkpoint covers.
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { configure } from 'safe-stable-stringify';

/** Sorted keys at every depth, `undefined` fields left out; throws on values JSON cannot carry (bigint, cycles). */
const stableStringify = configure({ deterministic: true, bigint: false, circularValue: Error });

export const GENESIS_HASH = '0'.repeat(64);

export function canonicalJson(value: object): string {
  return stableStringify(value) as string;
}

/** Where the chain stands: the next record gets `seq` and chains to `hash`. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const EMPTY_CHAIN: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

export interface SealedRecord {
  line: string;
  head: ChainHead;
}

/** The record's line and the chain head after it. `fields` must not carry `seq`, `prev` or `hash`. */
export function seal(head: ChainHead, fields: object): SealedRecord {
  const body = canonicalJson({ ...fields, seq: head.seq, prev: head.hash });
  const hash = sha256(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, head: { seq: head.seq + 1, hash } };
}

/** A sealed line ends with its hash; what is before it, closed again, is the hashed canonical JSON. */
const HASH_FIELD = /,"hash":"([0-9a-f]{64})"\}$/;

export interface Checkpoint {
  /** `seq` of the last record covered. */
  seq: number;
  /** That record's `hash`. */
  hash: string;
  time: string;
  sig: string;
}

export function signCheckpoint(key: KeyObject, last: { seq: number; hash: string }, time: string): string {
  const payload = { seq: last.seq, hash: last.hash, time };
  const sig = sign(null, Buffer.from(canonicalJson(payload)), key).toString('base64');
  return canonicalJson({ ...payload, sig });
}

export function checkpointSignatureValid(key: KeyObject, cp: Checkpoint): boolean {
  const payload = canonicalJson({ seq: cp.seq, hash: cp.hash, time: cp.time });
  return verify(null, Buffer.from(payload), key, Buffer.from(cp.sig, 'base64'));
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** One line of an input file, named for the report. */
export interface Located {
  file: string;
  /** 1-based. */
  line: number;
  text: string;
}

export interface ChainBreak {
  at: Located;
  /** The `seq` the record should have had. */
  expectedSeq: number;
  problem: string;
}

export interface ChainSummary {
  records: number;
  firstSeq: number;
  /** The head after the last record: `seq` is one past the last record's. */
  head: ChainHead;
  /** Hash of each record by seq, for the checkpoints. */
  hashes: Map<number, string>;
}

/**
 * Walks the records in order. The first record may continue a chain from files not given (its `seq` and `prev`
 * are then taken on trust, and the summary says from which seq on it verified); every later one must follow.
 */
export function verifyChain(lines: Iterable<Located>): { ok: true; summary: ChainSummary } | { ok: false; broken: ChainBreak } {
  let head: ChainHead | undefined;
  let firstSeq = 0;
  let records = 0;
  const hashes = new Map<number, string>();
  for (const at of lines) {
    const expectedSeq = head?.seq ?? 0;
    const problem = recordProblem(at.text, head);
    if (problem) return { ok: false, broken: { at, expectedSeq, problem } };
    const record = JSON.parse(at.text) as { seq: number; hash: string };
    if (!head) firstSeq = record.seq;
    head = { seq: record.seq + 1, hash: record.hash };
    hashes.set(record.seq, record.hash);
    records++;
  }
  return { ok: true, summary: { records, firstSeq, head: head ?? EMPTY_CHAIN, hashes } };
}

/** Why this line is not the record that follows `head` (any record when `head` is undefined), or undefined. */
function recordProblem(text: string, head: ChainHead | undefined): string | undefined {
  try {
    JSON.parse(text);
  } catch {
    return 'not a JSON record (cut short or altered)';
  }
  const sealed = HASH_FIELD.exec(text);
  if (!sealed) return 'no hash as its last field (altered)';
  const hashed = `${text.slice(0, sealed.index)}}`;
  const body = JSON.parse(hashed) as { seq?: unknown; prev?: unknown };
  if (!Number.isSafeInteger(body.seq) || typeof body.prev !== 'string') return 'no seq or prev';
  if (canonicalJson(body) !== hashed) return 'not in canonical form (altered)';
  if (sha256(hashed) !== sealed[1]) return 'hash does not match the record (altered)';
  if (!head) return body.prev === GENESIS_HASH && body.seq !== 0 ? 'a chain start with seq other than 0' : undefined;
  if (body.seq !== head.seq) return `seq ${String(body.seq)} where ${head.seq} was due (a record is missing, inserted or moved)`;
  if (body.prev !== head.hash) return 'prev is not the hash of the record before it (a record is missing, inserted or moved)';
  return undefined;
}

export interface CheckpointBreak {
  at: Located;
  problem: string;
}

/**
 * Checks each checkpoint's signature, then that the chain holds the signed hash at the signed seq. Checkpoints
 * before the first given record are skipped (their files were not given); `covered` counts the ones checked.
 */
export function verifyCheckpoints(lines: Iterable<Located>, key: KeyObject, chain: ChainSummary): { ok: true; covered: number; last?: Checkpoint } | { ok: false; broken: CheckpointBreak } {
  let covered = 0;
  let last: Checkpoint | undefined;
  for (const at of lines) {
    let cp: Checkpoint;
    try {
      cp = JSON.parse(at.text) as Checkpoint;
    } catch {
      return { ok: false, broken: { at, problem: 'not a JSON checkpoint (cut short or altered)' } };
    }
    if (!Number.isSafeInteger(cp.seq) || typeof cp.hash !== 'string' || typeof cp.time !== 'string' || typeof cp.sig !== 'string') {
      return { ok: false, broken: { at, problem: 'no seq, hash, time or sig' } };
    }
    if (!checkpointSignatureValid(key, cp)) return { ok: false, broken: { at, problem: `signature is not valid for this key (checkpoint of seq ${cp.seq})` } };
    if (cp.seq < chain.firstSeq) continue;
    const hash = chain.hashes.get(cp.seq);
    if (hash === undefined) {
      return { ok: false, broken: { at, problem: `signs up to seq ${cp.seq}, but the records end at seq ${chain.head.seq - 1}: records ${chain.head.seq}–${cp.seq} were cut from the end` } };
    }
    if (hash !== cp.hash) return { ok: false, broken: { at, problem: `record seq ${cp.seq} is not the one signed: the chain was rewritten up to it` } };
    covered++;
    last = cp;
  }
  return { ok: true, covered, ...(last ? { last } : {}) };
}
