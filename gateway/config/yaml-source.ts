// A parsed YAML file and the way back from a JSON pointer to a line and column in it.
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { ConfigIssue } from './load.js';

/** A parsed YAML file: its plain value and what is needed to turn a JSON pointer into a line. */
export interface Source {
  file: string;
  doc: Document;
  lines: LineCounter;
  value: unknown;
}

export function parseYaml(text: string, file: string, issues: ConfigIssue[]): Source | undefined {
  const lines = new LineCounter();
  // YAML 1.2 core schema (no `yes`/`on` booleans); uniqueKeys makes a duplicated key an error, not a silent override.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const { line, col } = lines.linePos(e.pos[0]);
      // Only a duplicate key sits in an intact structure; after a syntax error the tree is guesswork.
      const duplicate = e.code === 'DUPLICATE_KEY';
      const path = duplicate ? pathAt(doc.contents, e.pos[0], '') : '';
      issues.push({ file, path, line, column: col, message: duplicate ? 'duplicate key' : e.message });
    }
    return undefined;
  }
  try {
    return { file, doc, lines, value: doc.toJS() };
  } catch (err) {
    // toJS refuses alias bombs ("billion laughs") past its alias-count limit.
    issues.push({ file, path: '', message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

/** An issue at `pointer`, located at that node or, when it does not exist, at the nearest parent that does. */
export function at(src: Source, pointer: string, message: string, onKey = false): ConfigIssue {
  let node: unknown = src.doc.contents;
  let range = isNode(node) ? node.range : undefined;
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
  for (const [n, segment] of segments.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) break;
      node = pair.value;
      const last = n === segments.length - 1;
      range = (last && onKey) || !isNode(node) ? (isNode(pair.key) ? pair.key.range : range) : node.range;
    } else if (isSeq(node)) {
      node = node.items[Number(segment)];
      if (!isNode(node)) break;
      range = node.range;
    } else {
      break;
    }
  }
  if (!range) return { file: src.file, path: pointer, message };
  const { line, col } = src.lines.linePos(range[0]);
  return { file: src.file, path: pointer, line, column: col, message };
}

/** The JSON pointer of the deepest node at `offset` (for YAML errors, which come with an offset only). */
function pathAt(node: unknown, offset: number, path: string): string {
  const within = (n: unknown) => isNode(n) && n.range !== undefined && n.range !== null && offset >= n.range[0] && offset < n.range[2];
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? `${path}/${escapePointer(String(pair.key.value))}` : path;
      if (within(pair.key)) return key;
      if (within(pair.value)) return pathAt(pair.value, offset, key);
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) if (within(item)) return pathAt(item, offset, `${path}/${i}`);
  }
  return path;
}

export const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');
const unescapePointer = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~');
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
