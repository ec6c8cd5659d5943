// A route's traffic fields (issue #13, item 6): weighted backends, header and query matches, and filters. The names
// are Gateway API HTTPRoute's (`backendRefs`, `headers`, `queryParams`, `filters` and their types), so its users
// recognize them; docs/traffic.md lists where we differ.
import { Type, type Static } from '@sinclair/typebox';
import { FilePath, Name, Obj } from './schema-parts.js';

/** An HTTP field name (RFC 9110 token); compared without case. */
const HeaderName = Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', maxLength: 256 });
/**
 * A field value the gateway may send (RFC 9110 field-value octets, as Node's and undici's checks take them): tabs,
 * visible ASCII, spaces and U+0080–U+00FF. No CR, LF or NUL (they would split or end the header), nor any other
 * control character or a character above U+00FF: Node would refuse them on every request.
 */
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
export const MAX_HEADER_VALUE = 8192;
const HeaderValue = Type.String({ pattern: HEADER_VALUE.source, maxLength: MAX_HEADER_VALUE });

export const BackendRefSchema = Obj({
  /** An upstream's name. */
  name: Name,
  /** Share of the route's requests (proportional to the sum of the weights); 0 drains the backend. Default 1. */
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
});

const QueryName = Type.String({ minLength: 1, maxLength: 256 });

const ValueMatch = (name: typeof HeaderName | typeof QueryName) =>
  Obj({
    name,
    value: Type.String({ minLength: 1, maxLength: 4096 }),
    /** `Exact` (default), or `RegularExpression`: RE2 syntax, linear time, matched against the whole value. */
    type: Type.Optional(Type.Union([Type.Literal('Exact'), Type.Literal('RegularExpression')])),
  });

/** Extra conditions of a route's `match`: every one must hold, each on exactly one value of its header or parameter. */
export const MatchExtensions = {
  headers: Type.Optional(Type.Array(ValueMatch(HeaderName), { minItems: 1, maxItems: 16 })),
  queryParams: Type.Optional(Type.Array(ValueMatch(QueryName), { minItems: 1, maxItems: 16 })),
};

/** A header a route writes: exactly one of `value` and `valueFile`. */
const HeaderWrite = Obj({
  name: HeaderName,
  value: Type.Optional(HeaderValue),
  /**
   * A file holding the value (a leading byte order mark and one trailing line break ignored), read at start and at
   * each reload: a credential (an upstream's API key, say) then stays out of the config, its ConfigMap and `/config`.
   */
  valueFile: Type.Optional(FilePath),
});

const HeaderModifier = Obj({
  /** Replaces the header, or adds it when absent. */
  set: Type.Optional(Type.Array(HeaderWrite, { minItems: 1, maxItems: 32 })),
  /** Adds a value, after any the header already has. */
  add: Type.Optional(Type.Array(HeaderWrite, { minItems: 1, maxItems: 32 })),
  remove: Type.Optional(Type.Array(HeaderName, { minItems: 1, maxItems: 32 })),
});

const RedirectPath = Type.Union([
  Obj({ type: Type.Literal('ReplaceFullPath'), replaceFullPath: Type.String({ pattern: '^/[^\\s?#]*$', maxLength: 1024 }) }),
  /** Replaces the part of the path the route's `match.path.prefix` matched. */
  Obj({ type: Type.Literal('ReplacePrefixMatch'), replacePrefixMatch: Type.String({ pattern: '^/[^\\s?#]*$', maxLength: 1024 }) }),
]);

export const RouteFilterSchema = Type.Union([
  /** Request headers changed after authorization (policies see what the client sent), before the upstream. */
  Obj({ type: Type.Literal('RequestHeaderModifier'), requestHeaderModifier: HeaderModifier }),
  /** Headers of the upstream's answer changed before the client gets it (not the gateway's own refusals). */
  Obj({ type: Type.Literal('ResponseHeaderModifier'), responseHeaderModifier: HeaderModifier }),
  /** Answers a redirect after authentication and authorization, without any upstream. */
  Obj({
    type: Type.Literal('RequestRedirect'),
    requestRedirect: Obj({
      scheme: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('https')])),
      hostname: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$', maxLength: 253 })),
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
      path: Type.Optional(RedirectPath),
      /** Default 302. */
      statusCode: Type.Optional(Type.Union([301, 302, 303, 307, 308].map((c) => Type.Literal(c)))),
    }),
  }),
  /** A fire-and-forget copy of the request to another upstream; its answer is discarded. */
  Obj({
    type: Type.Literal('RequestMirror'),
    requestMirror: Obj({
      backendRef: Obj({ name: Name }),
      /** Share of the route's requests mirrored; default 100. */
      percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    }),
  }),
]);

export const RouteTrafficFields = {
  /** Weighted upstreams (Gateway API `backendRefs`); instead of `upstream`. */
  backendRefs: Type.Optional(Type.Array(BackendRefSchema, { minItems: 1, maxItems: 64 })),
  /** Header rewrites, a redirect, a mirror (Gateway API HTTPRoute filters); each type at most once. */
  filters: Type.Optional(Type.Array(RouteFilterSchema, { minItems: 1, maxItems: 4 })),
};

export type BackendRefConfig = Static<typeof BackendRefSchema>;
export type RouteFilterConfig = Static<typeof RouteFilterSchema>;
export type HeaderModifierConfig = Static<typeof HeaderModifier>;
export type HeaderWriteConfig = Static<typeof HeaderWrite>;
export type ValueMatchConfig = Static<ReturnType<typeof ValueMatch>>;

/** Every header a route's filters write, with its JSON pointer under `at` (the route's): what names a file, and where. */
export function headerWrites(filters: readonly RouteFilterConfig[] | undefined, at: string): { write: HeaderWriteConfig; pointer: string }[] {
  const out: { write: HeaderWriteConfig; pointer: string }[] = [];
  filters?.forEach((f, j) => {
    const modifier = modifierOf(f);
    if (!modifier) return;
    const [field, m] = modifier;
    for (const list of ['set', 'add'] as const) m[list]?.forEach((write, k) => out.push({ write, pointer: `${at}/filters/${j}/${field}/${list}/${k}` }));
  });
  return out;
}

function modifierOf(f: RouteFilterConfig): [field: string, modifier: HeaderModifierConfig] | undefined {
  if (f.type === 'RequestHeaderModifier') return ['requestHeaderModifier', f.requestHeaderModifier];
  if (f.type === 'ResponseHeaderModifier') return ['responseHeaderModifier', f.responseHeaderModifier];
  return undefined;
}
