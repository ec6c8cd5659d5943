// When to renew a certificate. Pure.

export interface RenewalOptions {
  /** Fraction of the lifetime left when renewal happens: Istio SECRET_GRACE_PERIOD_RATIO (0.5 = at half-life). */
  ratio?: number;
  /** Random spread of `ratio` (± jitter): Istio SECRET_GRACE_PERIOD_RATIO_JITTER, so a fleet issued together
   * does not renew in the same second. */
  jitter?: number;
  /** Uniform in [0, 1); injected for tests. */
  random?: () => number;
}

/**
 * The instant to renew a certificate valid from `notBefore` to `notAfter`: `notAfter − (ratio ± jitter) × lifetime`,
 * as Istio's SDS secret cache computes its rotate time (security/pkg/nodeagent/cache/secretcache.go).
 */
export function renewalTime(notBefore: Date, notAfter: Date, opts: RenewalOptions = {}): Date {
  const { ratio = 0.5, jitter = 0.01, random = Math.random } = opts;
  if (!(ratio > 0 && ratio < 1)) throw new Error(`ratio must be in (0, 1), got ${ratio}`);
  if (!(jitter >= 0 && jitter < Math.min(ratio, 1 - ratio))) {
    throw new Error(`jitter must be in [0, ${Math.min(ratio, 1 - ratio)}), got ${jitter}`);
  }
  const lifetime = notAfter.getTime() - notBefore.getTime();
  if (!(lifetime > 0)) throw new Error('notAfter must be after notBefore');
  const grace = ratio + (2 * random() - 1) * jitter;
  return new Date(notAfter.getTime() - grace * lifetime);
}
