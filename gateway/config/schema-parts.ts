// Building blocks shared by every section of the config schema, so a name, a path or a port means the
// same thing (and is checked the same way) wherever it appears.
import { Type, type TSchema } from '@sinclair/typebox';

export { DryRunSinceSchema as DryRunSince } from '../../policies/schema.js';

/** A closed object: unknown keys are errors. */
export const Obj = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });

export const Name = Type.String({ pattern: '^[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?$', description: 'lower-case name' });
export const FilePath = Type.String({ minLength: 1, description: 'path, relative to the file that names it' });
export const Port = Type.Integer({ minimum: 0, maximum: 65535 });
export const Millis = Type.Integer({ minimum: 1, maximum: 3_600_000 });
export const Cidr = Type.String({ minLength: 2, maxLength: 64, description: 'IP address or CIDR block' });
/**
 * SPIFFE-ID.md §2: a lower-case trust domain, then path segments of letters, digits, `.`, `-` and `_` only, none of
 * them `.` or `..` (spelled without lookahead, which Go's RE2 in Helm's schema check lacks). The same rule as
 * certs/spiffe-id.ts parses certificates by, so a configured ID can match one: `a%2Fb` or `x:y@z` never could.
 */
const SPIFFE_SEGMENT = '(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)';
export const SpiffeId = Type.String({ maxLength: 2048, pattern: `^spiffe://[a-z0-9._-]{1,255}(/${SPIFFE_SEGMENT})*$` });

/**
 * The TLS of a listener that asks clients for certificates (admin plane, egress proxy): its own certificate, and
 * the CA bundle client certificates are verified against, the mesh trust bundle when unset.
 */
export const ClientCertTlsFields = {
  certificate: Obj({ cert: FilePath, key: FilePath }),
  /** CA bundle client certificates are verified against; defaults to the mesh trust bundle. */
  clientCa: Type.Optional(FilePath),
};
