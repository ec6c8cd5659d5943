// The mesh's trust material, loaded once per runtime: every trust domain's bundle (own and federated),
// the revocation lists, and SPIFFE peer verifiers built from them. OpenSSL gets the union of the bundles
// to verify chains during the handshake; the SPIFFE verifier then insists that the chain ends in the
// bundle of the peer's own trust domain (Envoy's SPIFFE validator: bundles are isolated), and that
// neither the serial nor the ID is revoked.
import fs from 'node:fs';
import { compileRevocationList, createSpiffePeerVerifier, type RevocationList, type SpiffePeerVerifier } from '../../../certs/verify.js';
import type { MeshIdentityConfig } from '../../config/schema.js';

export interface MeshTrust {
  /** Every trusted CA, for OpenSSL's chain verification. */
  readonly caPem: string;
  /** `mesh.revoked`, for the paths that verify against another CA and check revocation alone. */
  readonly revoked: RevocationList;
  /** A verifier for peers of any trusted domain, or only the given SPIFFE IDs. */
  verifier(expected?: readonly string[]): SpiffePeerVerifier;
}

export function loadMeshTrust(mesh: MeshIdentityConfig): MeshTrust {
  const bundles: Record<string, string> = { [mesh.trustDomain]: fs.readFileSync(mesh.bundle, 'utf8') };
  for (const federated of mesh.federatedBundles ?? []) {
    if (bundles[federated.trustDomain] !== undefined) throw new Error(`trust domain ${federated.trustDomain} has two bundles`);
    bundles[federated.trustDomain] = fs.readFileSync(federated.bundle, 'utf8');
  }
  const revoked = compileRevocationList(mesh.revoked);
  const options = { bundles, revoked };
  const any = createSpiffePeerVerifier(options);
  return {
    caPem: Object.values(bundles).join('\n'),
    revoked,
    verifier: (expected) => (expected ? createSpiffePeerVerifier({ ...options, expected }) : any),
  };
}
