// Builds the RequestAttributes the policy engine reads, with defaults for a plain mTLS GET.
import type { RequestAttributes, RequestAuth } from '../../../policies/types.js';

export interface RequestSpec extends Partial<Omit<RequestAttributes, 'header' | 'auth'>> {
  headers?: Record<string, string[]>;
  auth?: Partial<RequestAuth>;
}

export function request(spec: RequestSpec = {}): RequestAttributes {
  const { headers = {}, auth, ...rest } = spec;
  return {
    host: 'api.example.com',
    method: 'GET',
    path: '/',
    port: 8443,
    sni: 'api.example.com',
    sourceIp: '10.1.2.3',
    remoteIp: '10.1.2.3',
    peerSpiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
    ...rest,
    ...(auth !== undefined ? { auth: authOf(auth) } : {}),
    header: (name) => headers[name],
  };
}

function authOf(auth: Partial<RequestAuth>): RequestAuth {
  const issuer = auth.issuer ?? 'https://issuer.example';
  const subject = auth.subject ?? 'alice';
  return {
    issuer,
    subject,
    principal: auth.principal ?? `${issuer}/${subject}`,
    audiences: auth.audiences ?? ['api'],
    claims: auth.claims ?? {},
  };
}
