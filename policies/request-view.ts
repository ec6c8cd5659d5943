// The request as policies see it: the attributes of `RequestAttributes`, with the derived ones (peer
// principal, trust domain, parsed addresses) computed at most once per evaluation and only when a policy
// asks for them.
import type { RequestAttributes } from './types.js';
import { parseIp, type IpAddress } from '../gateway/core/net/ip.js';
import { SPIFFE_SCHEME } from './match.js';

export class RequestView {
  readonly req: RequestAttributes;
  // `null` = computed and absent; `undefined` = not computed yet.
  #principal: string | null | undefined;
  #sourceAddr: IpAddress | null | undefined;
  #remoteAddr: IpAddress | null | undefined;
  #foldedPath: string | undefined;

  constructor(req: RequestAttributes) {
    this.req = req;
  }

  /** Peer SPIFFE ID without `spiffe://` (Istio's `td/ns/x/sa/y`); absent without a verified client certificate. */
  get peerPrincipal(): string | undefined {
    if (this.#principal === undefined) {
      const id = this.req.peerSpiffeId;
      // Only a well-formed SPIFFE ID is an identity; anything else counts as no peer certificate.
      this.#principal = id !== undefined && id.startsWith(SPIFFE_SCHEME) && id.length > SPIFFE_SCHEME.length
        ? id.slice(SPIFFE_SCHEME.length)
        : null;
    }
    return this.#principal ?? undefined;
  }

  /** The path with ASCII letters lower-cased, for case-insensitive path rules. */
  get foldedPath(): string {
    return (this.#foldedPath ??= this.req.path.toLowerCase());
  }

  get trustDomain(): string | undefined {
    const principal = this.peerPrincipal;
    if (principal === undefined) return undefined;
    const slash = principal.indexOf('/');
    return slash === -1 ? principal : principal.slice(0, slash);
  }

  get sourceAddr(): IpAddress | undefined {
    if (this.#sourceAddr === undefined) this.#sourceAddr = parseIp(this.req.sourceIp) ?? null;
    return this.#sourceAddr ?? undefined;
  }

  get remoteAddr(): IpAddress | undefined {
    if (this.#remoteAddr === undefined) this.#remoteAddr = parseIp(this.req.remoteIp) ?? null;
    return this.#remoteAddr ?? undefined;
  }

  /**
   * A JWT claim by path (`[a][b]` nesting) as strings: array claims yield each element, and the
   * space-separated `scope`/`permission` claims (RFC 8693 §4.2) yield each word. Numbers and booleans
   * compare by their JSON spelling; objects and nulls are absent.
   */
  claim(path: readonly string[]): string | readonly string[] | undefined {
    let value: unknown = this.req.auth?.claims;
    for (const name of path) {
      // Own properties only: `claims[constructor]` must not reach Object.prototype.
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, name)) {
        return undefined;
      }
      value = (value as Record<string, unknown>)[name];
    }
    const last = path[path.length - 1];
    if (typeof value === 'string' && (last === 'scope' || last === 'permission') && value.includes(' ')) {
      return value.split(' ').filter((word) => word !== '');
    }
    if (Array.isArray(value)) {
      const strings = value.map(claimScalar).filter((v): v is string => v !== undefined);
      return strings.length > 0 ? strings : undefined;
    }
    return claimScalar(value);
  }
}

function claimScalar(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return String(value);
  return undefined;
}
