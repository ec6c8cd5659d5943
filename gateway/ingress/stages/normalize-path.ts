// Path normalization stage: one canonical path for routing, policy and the upstream (policies/path.ts).
// The target is read once, as leniently as the most lenient route allows (the union of the routes'
// `pathNormalization` opt-outs, compiled here at config time); the route stage then refuses a target that
// needed a reading its own route did not opt into. A target the strict default accepts reads the same under
// every option set, so with no opt-out anywhere this is exactly the strict default.
import { normalizeRequestTarget, type NormalizedTarget, type PathOptions } from '../../../policies/path.js';
import type { RouteConfig } from '../../config/schema.js';
import { GatewayError } from '../../core/errors.js';

export interface PathStage {
  /** The normalized target; throws GW_PATH_REJECTED / GW_REQUEST_MALFORMED with the reason. */
  normalize(target: string): NormalizedTarget;
}

/** The options of one route's `pathNormalization`, as the normalizer takes them. */
export function routePathOptions(route: RouteConfig): PathOptions {
  const opts = route.pathNormalization ?? {};
  return Object.freeze({
    allowSemicolonParams: opts.allowSemicolonParams === true,
    allowEncodedPercent: opts.allowEncodedPercent === true,
    decodeUtf8: opts.decodeUtf8 ?? 'reject',
  });
}

export function createPathStage(routes: readonly RouteConfig[]): PathStage {
  const each = routes.map(routePathOptions);
  const widest: PathOptions = Object.freeze({
    allowSemicolonParams: each.some((o) => o.allowSemicolonParams),
    allowEncodedPercent: each.some((o) => o.allowEncodedPercent),
    decodeUtf8: each.some((o) => o.decodeUtf8 === 'nfkc') ? 'nfkc' : 'reject',
  });
  return {
    normalize(target) {
      const result = normalizeRequestTarget(target, widest);
      if ('error' in result) throw new GatewayError(result.error, result.reason);
      return result;
    },
  };
}
