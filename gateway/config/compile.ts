// Everything the gateway checks about a config beyond its schema, run by the loader so that `validate`, `run`, a
// reload and every cluster worker refuse exactly the same configs. Cross-references are checked here; the rules that
// belong to a component (a JWKS with a usable key, a certificate that matches its key, an egress rule's hosts, …) are
// the components' own checks, called with the config and located at the config node they came from.
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { requireCertificates } from '../../certs/pem.js';
import { parseSpiffeId, spiffeIdFromCertificate } from '../../certs/spiffe-id.js';
import { verifyChain } from '../../certs/verify.js';
import { compilePolicies, PolicyCompileError } from '../../policies/compile.js';
import type { Policy } from '../../policies/schema.js';
import { readAdminToken } from '../admin/server.js';
import { clientCertTlsOptions, type ClientCertTls } from '../core/client-cert-tls.js';
import { canonicalHostPattern } from '../core/net/host.js';
import { compileOriginate, exactHost } from '../egress/runtime.js';
import { compileAddressExceptions, createAddressGuard, serverLookup } from '../egress/stages/address-guard.js';
import { createAllowlist } from '../egress/stages/allowlist.js';
import { createIdentify } from '../egress/stages/identify.js';
import { servingCertificates, upstreamClientOptions } from '../ingress/runtime.js';
import { checkJwtProvider, claimHeaderNames } from '../jwt/verifier.js';
import { checkRouteTraffic } from './route-traffic-checks.js';
import { headerWrites } from './route-traffic-schema.js';
import { headerValue } from '../ingress/stages/route-filters.js';
import { compileTrustedProxies } from '../ingress/stages/forwarded.js';
import { redisUrl } from '../limits/rate-limiter.js';
import { loadMeshTrust, type MeshTrust } from '../ingress/tls/mesh-trust.js';
import { DEV_HELPERS_ADDRESS, devHelpersPlan } from '../dev/helpers-plan.js';
import { readSigningKey } from '../audit/trail.js';
import { DEFAULTS } from './defaults.js';
import { unreadable } from './paths.js';
import { certificateList, policyTargets, type Config, type RouteConfig, type UpstreamConfig } from './schema.js';

/** A policy and where it was read: the main config or one of its policy files (`S` is the loader's file handle). */
export interface PolicyRef<S> {
  policy: Policy;
  src: S;
  index: number;
}

/** Records a problem at a JSON pointer of the main config or, with `src`, of a policy file. */
export type Report<S> = (pointer: string, message: string, src?: S) => void;

/**
 * Runs every check; each problem goes to `report`, so one pass lists them all. Checks that read a file in
 * `unreadable` (already reported by the loader) are skipped.
 */
export function compileConfig<S extends { file: string }>(
  config: Config,
  main: S,
  policies: readonly PolicyRef<S>[],
  unreadable: ReadonlySet<string>,
  report: Report<S>,
): void {
  const readable = (...files: (string | undefined)[]) => files.every((f) => f === undefined || !unreadable.has(f));
  checkNames(config, main, policies, report);
  checkReferences(config, report);
  checkPorts(config, report);
  checkDevHelpers(config, report);
  const mesh = config.mesh;
  const meshFiles = mesh ? [mesh.svid.cert, mesh.svid.key, mesh.bundle, ...(mesh.federatedBundles ?? []).map((f) => f.bundle)] : [];
  const trust = readable(...meshFiles) ? attempt(report, '/mesh', () => checkMesh(config)) : undefined;
  checkListenerTls(config, readable, report);
  if (readable(...meshFiles)) checkUpstreams(config, trust, readable, report);
  config.jwtProviders?.forEach((p, i) => {
    if (readable(p.jwksFile)) attempt(report, `/jwtProviders/${i}`, () => checkJwtProvider(p));
  });
  if (config.redis) attempt(report, '/redis', () => redisUrl(config.redis!));
  const proxyProblems: string[] = [];
  compileTrustedProxies(config.trustedProxies ?? [], proxyProblems);
  for (const problem of proxyProblems) reportPathed(problem, '/trustedProxies', report);
  checkHeaderValueFiles(config, readable, report);
  checkAdmin(config, readable, report);
  checkEgress(config, readable, report);
  checkAudit(config, readable, report);
  checkPolicies(policies, config, report);
}

type Readable = (...files: (string | undefined)[]) => boolean;

/** Each route header given by `valueFile` must hold one header value, as the runtime reads it. */
function checkHeaderValueFiles<S>(config: Config, readable: Readable, report: Report<S>): void {
  config.routes.forEach((r, i) => {
    for (const { write, pointer } of headerWrites(r.filters, `/routes/${i}`)) {
      if (write.valueFile !== undefined && readable(write.valueFile)) attempt(report, `${pointer}/valueFile`, () => headerValue(write));
    }
  });
}

function checkAudit<S>(config: Config, readable: Readable, report: Report<S>): void {
  const checkpoints = config.audit?.checkpoints;
  if (!checkpoints) return;
  if (readable(checkpoints.keyFile)) attempt(report, '/audit/checkpoints/keyFile', () => readSigningKey(checkpoints.keyFile));
  if (checkpoints.file === config.audit!.file) report('/audit/checkpoints/file', 'must not be the audit file itself');
}

/** A component's own `section.field[name]: ` message prefix: the pointer says where, more exactly. */
const COMPONENT_PREFIX = /^[A-Za-z]+(\.[A-Za-z]+|\[[^\]]*\])*: /;

/** Runs `check`, reporting what it throws at `pointer` (without a COMPONENT_PREFIX); its result, or undefined. */
function attempt<T, S>(report: Report<S>, pointer: string, check: () => T): T | undefined {
  try {
    return check();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    report(pointer, message.replace(COMPONENT_PREFIX, ''));
    return undefined;
  }
}

function checkNames<S extends { file: string }>(config: Config, main: S, policies: readonly PolicyRef<S>[], report: Report<S>): void {
  const inMain = <T extends { name: string }>(items: readonly T[] | undefined, prefix: string) =>
    (items ?? []).map((item, i) => ({ name: item.name, src: main, path: `${prefix}/${i}/name` }));
  noDuplicates(inMain(config.listeners, '/listeners'), 'listener', report);
  const hosts = config.listeners.flatMap((l, i) => l.hosts.map((h, j) => ({ name: h.name, src: main, path: `/listeners/${i}/hosts/${j}/name` })));
  noDuplicates(hosts, 'virtual host', report);
  noDuplicates(inMain(config.upstreams, '/upstreams'), 'upstream', report);
  noDuplicates(inMain(config.routes, '/routes'), 'route', report);
  noDuplicates(inMain(config.jwtProviders, '/jwtProviders'), 'JWT provider', report);
  noDuplicates(inMain(config.rateLimits, '/rateLimits'), 'rate limit', report);
  noDuplicates([...inMain(config.egress?.deny, '/egress/deny'), ...inMain(config.egress?.allow, '/egress/allow')], 'egress rule', report);
  noDuplicates(policies.map(({ policy, src, index }) => ({ name: policy.name, src, path: `/policies/${index}/name` })), 'policy', report);
  config.listeners.forEach((l, i) => {
    const claimed = new Map<string, string>();
    l.hosts.forEach((h, j) =>
      h.hostnames.forEach((hostname, k) => {
        const key = canonicalHostPattern(hostname)?.host ?? hostname;
        const owner = claimed.get(key);
        if (owner !== undefined) report(`/listeners/${i}/hosts/${j}/hostnames/${k}`, `hostname "${hostname}" is already claimed by virtual host "${owner}" on this listener`);
        else claimed.set(key, h.name);
      }),
    );
  });
}

function noDuplicates<S extends { file: string }>(items: readonly { name: string; src: S; path: string }[], what: string, report: Report<S>): void {
  const seen = new Map<string, { src: S; path: string }>();
  for (const item of items) {
    const first = seen.get(item.name);
    if (!first) {
      seen.set(item.name, item);
      continue;
    }
    const where = first.src === item.src ? first.path : `${first.src.file} ${first.path}`;
    report(item.path, `duplicate ${what} name "${item.name}" (first defined at ${where})`, item.src);
  }
}

function checkReferences<S>(config: Config, report: Report<S>): void {
  const upstreams = new Map(config.upstreams.map((u) => [u.name, u]));
  const providers = new Set((config.jwtProviders ?? []).map((p) => p.name));
  const hosts = config.listeners.flatMap((l, i) => l.hosts.map((h, j) => ({ host: h, path: `/listeners/${i}/hosts/${j}` })));
  const vhosts = new Map(hosts.map(({ host }) => [host.name, host]));
  const rateLimits = new Set((config.rateLimits ?? []).map((l) => l.name));
  const claimHeaders = claimHeaderNames(config.jwtProviders ?? []);

  config.listeners.forEach((l, i) => {
    if (l.defaultHost !== undefined && !l.hosts.some((h) => h.name === l.defaultHost)) {
      report(`/listeners/${i}/defaultHost`, `no virtual host named "${l.defaultHost}" on this listener`);
    }
  });

  for (const { host, path } of hosts) {
    if (host.tls.mode === 'passthrough') {
      const upstream = upstreams.get(host.tls.upstream);
      if (!upstream) report(`${path}/tls/upstream`, `no upstream named "${host.tls.upstream}"`);
      else if (!upstream.url.startsWith('tcp://')) report(`${path}/tls/upstream`, `passthrough upstream "${upstream.name}" must be tcp://host:port`);
    } else if (host.tls.clientAuth !== undefined && host.tls.clientAuth !== 'none' && host.tls.clientCa === undefined && !config.mesh) {
      report(`${path}/tls/clientAuth`, 'client certificates are verified against the mesh trust bundle unless clientCa is set, and "mesh" is not configured');
    }
  }

  const httpUpstream = (name: string, at: string) => {
    const upstream = upstreams.get(name);
    if (!upstream) report(at, `no upstream named "${name}"`);
    else if (!/^https?:\/\//.test(upstream.url)) report(at, `upstream "${upstream.name}" is ${upstream.url}; an HTTP route needs an http:// or https:// upstream`);
  };
  config.routes.forEach((r, i) => {
    if (r.upstream !== undefined) httpUpstream(r.upstream, `/routes/${i}/upstream`);
    checkRouteTraffic(r, `/routes/${i}`, httpUpstream, claimHeaders, report);
    if (r.websocket) checkWebSocketRoute(r, `/routes/${i}/websocket`, upstreams, report);
    r.jwtProviders?.forEach((p, k) => {
      if (!providers.has(p)) report(`/routes/${i}/jwtProviders/${k}`, `no JWT provider named "${p}"`);
    });
    if (r.rateLimit !== undefined && !rateLimits.has(r.rateLimit)) report(`/routes/${i}/rateLimit`, `no rate limit named "${r.rateLimit}"`);
    // A dry-run of a requirement the route does not have would report nothing and read as a rollout under way.
    if (r.authenticationMode !== undefined && r.authentication !== 'required') {
      report(`/routes/${i}/authenticationMode`, 'applies to authentication: required; set it on the route or remove authenticationMode');
    }
    r.match.hosts?.forEach((h, k) => {
      const host = vhosts.get(h);
      if (!host) report(`/routes/${i}/match/hosts/${k}`, `no virtual host named "${h}"`);
      else if (host.tls.mode === 'passthrough') report(`/routes/${i}/match/hosts/${k}`, `virtual host "${h}" passes TLS through; HTTP routes cannot match it`);
    });
  });

  config.upstreams.forEach((u, i) => {
    if (u.url.startsWith('https://')) {
      if ((u.tls?.mutual ?? DEFAULTS.upstreamMutualTls) && !config.mesh) {
        const path = u.tls?.mutual === undefined ? `/upstreams/${i}/url` : `/upstreams/${i}/tls/mutual`;
        report(path, 'mutual TLS (the default for https upstreams) presents the gateway SVID, so "mesh" must be configured; or set tls.mutual: false');
      }
    } else {
      for (const key of Object.keys(u.tls ?? {})) report(`/upstreams/${i}/tls/${key}`, 'only applies to https:// upstreams');
    }
    checkTraffic(u, `/upstreams/${i}`, report);
  });

  config.egress?.proxyAuthorization?.providers.forEach((name, i) => {
    if (!providers.has(name)) report(`/egress/proxyAuthorization/providers/${i}`, `no JWT provider named "${name}"`);
  });
}

/** Traffic fields that only HTTP upstreams read: a passthrough (`tcp://`) upstream is one TCP destination. */
const HTTP_TRAFFIC_FIELDS = ['endpoints', 'dns', 'loadBalancer', 'healthCheck', 'outlierDetection', 'maxRequests'] as const;

/** A WebSocket needs somewhere to go, over HTTP/1.1: over h2 it would need extended CONNECT (RFC 8441). */
function checkWebSocketRoute<S>(r: RouteConfig, at: string, upstreams: ReadonlyMap<string, UpstreamConfig>, report: Report<S>): void {
  if (r.filters?.some((f) => f.type === 'RequestRedirect')) report(at, 'a redirect route sends nothing upstream, so no WebSocket either');
  for (const name of [r.upstream, ...(r.backendRefs ?? []).map((b) => b.name)]) {
    if (name !== undefined && upstreams.get(name)?.protocol === 'h2') report(at, `upstream "${name}" speaks h2; a WebSocket needs an HTTP/1.1 upstream`);
  }
}

function checkTraffic<S>(u: UpstreamConfig, at: string, report: Report<S>): void {
  if (u.url.startsWith('tcp://')) {
    for (const key of HTTP_TRAFFIC_FIELDS) if (u[key] !== undefined) report(`${at}/${key}`, 'only applies to http:// and https:// upstreams');
    return;
  }
  if (u.endpoints && u.dns) report(`${at}/dns`, 'set either endpoints or dns, not both');
  const lb = u.loadBalancer;
  if (lb?.policy === 'consistentHash' && !lb.hashOn) report(`${at}/loadBalancer/hashOn`, 'consistentHash needs hashOn (a header, a cookie or sourceIp)');
  if (lb?.hashOn && lb.policy !== 'consistentHash') report(`${at}/loadBalancer/hashOn`, 'only read by the consistentHash policy');
}

const WILDCARDS = new Set(['0.0.0.0', '::', '::0']);

/** Where `run` keeps generated material when its --state-dir does not say otherwise. */
const stateDirOf = (config: Config): string => config.stateDir ?? resolve(DEFAULTS.stateDir);

/** The development helpers of a `dev` section read the development PKI that `portcullis run` without -c generates. */
function checkDevHelpers<S>(config: Config, report: Report<S>): void {
  const { backend, issuer } = devHelpersPlan(config, stateDirOf(config));
  const files = [...(backend ? [backend.cert, backend.key] : []), ...(issuer ? [issuer.signingKeyFile] : [])];
  for (const file of files) {
    const problem = unreadable(file);
    if (problem) report('/dev', `${file}: ${problem} (the development PKI, which portcullis run without -c generates)`);
  }
}

/**
 * Every socket the gateway binds (listeners, the admin plane, the egress proxy, development helpers) must be free of the others: a clash
 * would otherwise surface only as EADDRINUSE at start. Port 0 asks the OS for a free port, so it never clashes; a
 * wildcard address clashes with every address on its port.
 */
function checkPorts<S>(config: Config, report: Report<S>): void {
  const sockets = [
    ...config.listeners.map((l, i) => ({ name: `listener "${l.name}"`, address: l.address ?? DEFAULTS.listenerAddress, port: l.port, path: `/listeners/${i}/port` })),
    { name: 'the admin plane', address: config.admin?.address ?? DEFAULTS.adminAddress, port: config.admin?.port ?? DEFAULTS.adminPort, path: config.admin?.port === undefined ? '/admin' : '/admin/port' },
    ...(config.egress
      ? [{ name: 'the egress proxy', address: config.egress.listener.address ?? DEFAULTS.egressListenerAddress, port: config.egress.listener.port, path: '/egress/listener/port' }]
      : []),
    ...Object.entries(devHelpersPlan(config, stateDirOf(config))).map(([helper, { port }]) => ({
      name: `the development ${helper === 'backend' ? 'demo backend' : 'token issuer'}`,
      address: DEV_HELPERS_ADDRESS,
      port,
      path: `/dev/${helper === 'backend' ? 'demoBackendPort' : 'tokenIssuerPort'}`,
    })),
  ];
  sockets.forEach((s, i) => {
    const clash = sockets.slice(0, i).find((b) => s.port !== 0 && b.port === s.port && (b.address === s.address || WILDCARDS.has(b.address) || WILDCARDS.has(s.address)));
    if (clash) report(s.path, `${s.address}:${s.port} is already used by ${clash.name}`);
  });
}

const readPem = (file: string) => readFileSync(file, 'utf8');

/** A certificate and its key as TLS will load them: both PEM, and the key the certificate's. */
function checkKeyPair(certFile: string, keyFile: string): true {
  const cert = readPem(certFile);
  requireCertificates(cert, certFile);
  try {
    createSecureContext({ cert, key: readPem(keyFile) });
  } catch (err) {
    const reason = (err as Error).message;
    throw new Error(/mismatch/i.test(reason) ? `${keyFile} is not the private key of ${certFile}` : `${certFile} / ${keyFile}: ${reason}`);
  }
  return true;
}

/** A CA bundle: Node's TLS would silently ignore a file with no certificate in it and then trust nothing. */
function checkBundle(file: string): true {
  requireCertificates(readPem(file), file);
  return true;
}

function checkMesh(config: Config): MeshTrust | undefined {
  if (!config.mesh) return undefined;
  checkKeyPair(config.mesh.svid.cert, config.mesh.svid.key);
  const trust = loadMeshTrust(config.mesh);
  checkOwnSvid(config.mesh);
  return trust;
}

/**
 * The gateway's SVID must be one its mesh peers accept: a SPIFFE ID of the mesh's own trust domain, chained to its
 * bundle and valid now. Otherwise every mutual-TLS upstream would refuse it while /readyz said ready.
 */
function checkOwnSvid(mesh: NonNullable<Config['mesh']>): void {
  const pem = readPem(mesh.svid.cert);
  const [leaf] = requireCertificates(pem, mesh.svid.cert);
  const id = spiffeIdFromCertificate(leaf!);
  if (id === undefined) throw new Error(`${mesh.svid.cert}: no SPIFFE ID (one spiffe:// URI SAN)`);
  const trustDomain = parseSpiffeId(id).trustDomain;
  if (trustDomain !== mesh.trustDomain) throw new Error(`${mesh.svid.cert}: ${id} is not in the mesh's trust domain ${mesh.trustDomain}`);
  const chain = verifyChain(pem, [readPem(mesh.bundle)]);
  if (!chain.ok) throw new Error(`${mesh.svid.cert}: not a certificate of the mesh bundle ${mesh.bundle} (${chain.reason}: ${chain.detail})`);
}

function checkListenerTls<S>(config: Config, readable: Readable, report: Report<S>): void {
  config.listeners.forEach((l, i) =>
    l.hosts.forEach((h, j) => {
      if (h.tls.mode !== 'terminate') return;
      const at = `/listeners/${i}/hosts/${j}/tls`;
      const listed = Array.isArray(h.tls.certificate);
      const certificates = certificateList(h.tls.certificate);
      certificates.forEach(({ cert, key }, k) => {
        const where = listed ? `${at}/certificate/${k}` : `${at}/certificate`;
        if (readable(cert, key)) attempt(report, where, () => checkKeyPair(cert, key));
      });
      if (certificates.length > 1 && readable(...certificates.flatMap((c) => [c.cert, c.key]))) {
        attempt(report, `${at}/certificate`, () => servingCertificates(h.name, certificates));
      }
      const clientCa = h.tls.clientCa;
      if (clientCa !== undefined && readable(clientCa)) attempt(report, `${at}/clientCa`, () => checkBundle(clientCa));
    }),
  );
}

function checkUpstreams<S>(config: Config, trust: MeshTrust | undefined, readable: Readable, report: Report<S>): void {
  config.upstreams.forEach((u, i) => {
    const ca = u.tls?.ca;
    if (!u.url.startsWith('https://') || !readable(ca)) return;
    if (ca !== undefined && attempt(report, `/upstreams/${i}/tls/ca`, () => checkBundle(ca)) === undefined) return;
    // A missing mesh is reported above; what is left are the pool's own TLS checks (CA, SPIFFE ID, SNI).
    if (config.mesh && !trust) return;
    attempt(report, `/upstreams/${i}`, () => upstreamClientOptions(config, u, trust));
  });
}

function checkAdmin<S>(config: Config, readable: Readable, report: Report<S>): void {
  const admin = config.admin;
  const tokenFile = admin?.tokenFile;
  if (tokenFile !== undefined && readable(tokenFile)) attempt(report, '/admin/tokenFile', () => readAdminToken(tokenFile));
  if (admin?.tls) checkClientCertTls(config, admin.tls, '/admin/tls', readable, report);
}

/** The admin plane's and the egress proxy's TLS, checked as `clientCertTlsOptions` builds it (client CA: its own or the mesh's). */
function checkClientCertTls<S>(config: Config, tls: ClientCertTls, at: string, readable: Readable, report: Report<S>): void {
  const { cert, key } = tls.certificate;
  const pair = readable(cert, key) ? attempt(report, `${at}/certificate`, () => checkKeyPair(cert, key)) : undefined;
  const clientCa = tls.clientCa;
  const ca = clientCa === undefined || !readable(clientCa) ? undefined : attempt(report, `${at}/clientCa`, () => checkBundle(clientCa));
  if (pair === undefined || (clientCa !== undefined && ca === undefined) || !readable(config.mesh?.bundle)) return;
  const meshBundlePem = config.mesh ? readPem(config.mesh.bundle) : undefined;
  attempt(report, at, () => clientCertTlsOptions(at.slice(1).replaceAll('/', '.'), tls, meshBundlePem, false));
}

function checkEgress<S>(config: Config, readable: Readable, report: Report<S>): void {
  const egress = config.egress;
  if (!egress) return;
  if (egress.listener.tls) checkClientCertTls(config, egress.listener.tls, '/egress/listener/tls', readable, report);
  // Rule by rule, so each problem points at its rule; names are checked for duplicates above.
  egress.deny?.forEach((rule, i) => attempt(report, `/egress/deny/${i}`, () => createAllowlist({ allow: [], deny: [rule] })));
  egress.allow.forEach((rule, i) => attempt(report, `/egress/allow/${i}`, () => createAllowlist({ allow: [rule] })));
  egress.sourceIdentities?.forEach((s, i) => attempt(report, `/egress/sourceIdentities/${i}`, () => createIdentify({ sourceIdentities: [s] })));
  if (egress.addressGuard) attempt(report, '/egress/addressGuard', () => compileAddressExceptions(egress.addressGuard));
  egress.staticHosts?.forEach((entry, i) =>
    attempt(report, `/egress/staticHosts/${i}`, () => createAddressGuard({ staticHosts: new Map([[exactHost('egress.staticHosts', entry.host), entry.addresses]]) })),
  );
  const resolver = egress.resolver;
  if (resolver) attempt(report, '/egress/resolver/servers', () => serverLookup({ servers: resolver.servers, timeoutMs: 1 }));
  // The SVID's content is checked with the mesh; here only whether there is one to present.
  const mesh = config.mesh ? { certPem: '', keyPem: '' } : undefined;
  egress.originate?.forEach((o, i) => {
    const ca = o.tls.ca;
    if (!readable(ca)) return;
    if (ca !== undefined && attempt(report, `/egress/originate/${i}/tls/ca`, () => checkBundle(ca)) === undefined) return;
    attempt(report, `/egress/originate/${i}`, () => compileOriginate(o, mesh));
  });
}

/**
 * What the policy compiler refuses beyond the schema (a route or passthrough host that does not exist, bad CIDRs,
 * misplaced templates, unknown `when` keys, request fields on a passthrough host), located in the file that holds
 * the policy. Each policy is compiled alone so that its problems' `policies[0]…` paths map back to its own index.
 */
function checkPolicies<S>(policies: readonly PolicyRef<S>[], config: Config, report: Report<S>): void {
  const targets = policyTargets(config);
  for (const { policy, src, index } of policies) {
    try {
      compilePolicies([policy], targets);
    } catch (err) {
      if (!(err instanceof PolicyCompileError)) throw err;
      for (const problem of err.problems) reportPathed(problem.replace(/^policies\[0\]/, `policies[${index}]`), `/policies/${index}`, report, src);
    }
  }
}

/** Reports an `a.b[2].c: message` problem (the form compilers use) at the JSON pointer `/a/b/2/c`, else at `fallback`. */
function reportPathed<S>(problem: string, fallback: string, report: Report<S>, src?: S): void {
  const split = problem.indexOf(': ');
  if (split === -1) return report(fallback, problem, src);
  const pointer = problem.slice(0, split).replace(/\.([^.[]+)/g, '/$1').replace(/\[(\d+)\]/g, '/$1');
  report(`/${pointer}`, problem.slice(split + 2), src);
}
