// The Helm chart rendered by the real `helm` binary (helm template, helm lint --strict), every manifest parsed and
// checked as a Kubernetes object, plus static checks of the Dockerfile. values.schema.json's `config` part is the
// gateway's own schema (scripts/helm-values-schema.ts), so helm refuses a gateway config the gateway would refuse.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigSchema } from '../../../gateway/config/schema.js';
import { PolicyFileSchema } from '../../../policies/schema.js';
import { helm, NO_HELM } from '../../helpers/helm.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(root, 'helm/portcullis');
const templatesDir = join(chartDir, 'templates');
const read = (path: string) => readFileSync(path, 'utf8');

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

const templates = Object.fromEntries(
  readdirSync(templatesDir)
    .filter((f) => /\.(ya?ml|tpl|txt)$/.test(f))
    .map((f) => [f, read(join(templatesDir, f))]),
);
const chart = parse(read(join(chartDir, 'Chart.yaml'))) as Dict;
const defaultValues = parse(read(join(chartDir, 'values.yaml'))) as Dict;

/** Helm's value merge: maps merge key by key, anything else (lists included) is replaced. */
function mergeValues(base: unknown, override: unknown): unknown {
  if (!isDict(base) || !isDict(override)) return structuredClone(override);
  const out: Dict = structuredClone(base);
  for (const [k, v] of Object.entries(override)) out[k] = mergeValues(base[k], v);
  return out;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Dict;
  [key: string]: unknown;
}

const RELEASE = ['edge', chartDir, '--namespace', 'gateways'];

/** `helm template` with `overrides` on top of values.yaml; throws helm's own message when it refuses. */
function render(overrides: Dict = {}) {
  const result = helm(['template', ...RELEASE], overrides);
  if (result.code !== 0) throw new Error(result.stderr);
  const all: K8sObject[] = [];
  for (const doc of parseAllDocuments(result.stdout)) {
    assert.deepEqual(doc.errors, [], `helm template output does not parse as YAML:\n${result.stdout}`);
    const object = doc.toJS() as K8sObject | null;
    if (object !== null) all.push(object);
  }
  const one = (kind: string, name?: string) => {
    const found = all.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
    return found[0] as K8sObject;
  };
  return { values: mergeValues(defaultValues, overrides) as Dict, all, one };
}

/**
 * NOTES.txt as `helm install` would print it. `helm template` skips it and a client-side dry-run install wants a
 * cluster, so a copy of the chart renders it as a manifest.
 */
function renderNotes(overrides: Dict = {}): string {
  const copy = mkdtempSync(join(tmpdir(), 'portcullis-chart-'));
  cpSync(chartDir, copy, { recursive: true });
  writeFileSync(join(copy, 'templates/_notes-test.tpl'), `{{- define "test.notes" -}}\n${read(join(templatesDir, 'NOTES.txt'))}{{- end -}}\n`);
  writeFileSync(join(copy, 'templates/notes-test.yaml'), 'notes: {{ include "test.notes" . | toJson }}\n');
  const result = helm(['template', 'edge', copy, '--namespace', 'gateways', '--show-only', 'templates/notes-test.yaml'], overrides);
  assert.equal(result.code, 0, result.stderr);
  return (parse(result.stdout) as { notes: string }).notes;
}

/** `helm lint --strict` of values.yaml plus `overrides`: the chart's schema and templates both have their say. */
const lint = (overrides: Dict = {}) => helm(['lint', '--strict', chartDir, '--namespace', 'gateways'], overrides);

const examplePolicies = {
  app: {
    version: 'v1',
    policies: [{ name: 'app-needs-mtls', action: 'ALLOW', routes: ['app'], rules: [{ from: [{ source: { trustDomains: ['example.org'] } }] }] }],
  },
};
const egressOn = {
  egress: { enabled: true, networkPolicy: { workloadNamespaces: ['shop', 'payments'] } },
  config: {
    egress: {
      listener: { address: '0.0.0.0', port: 3128 },
      allow: [{ name: 'stripe', identities: ['spiffe://example.org/ns/shop/*'], hosts: ['api.stripe.com'] }],
    },
  },
};

type Container = {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  env?: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[];
  securityContext: Dict;
  livenessProbe: { httpGet: { path: string; port: string; scheme: string } };
  readinessProbe: { httpGet: { path: string; port: string; scheme: string } };
  startupProbe: { httpGet: { path: string; port: string; scheme: string } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
};
// Fields of core/v1 PodSpec and Container that the chart may set.
const POD_SPEC_FIELDS = new Set([
  'serviceAccountName', 'automountServiceAccountToken', 'enableServiceLinks', 'terminationGracePeriodSeconds',
  'priorityClassName', 'imagePullSecrets', 'securityContext', 'containers', 'volumes', 'affinity',
  'topologySpreadConstraints', 'nodeSelector', 'tolerations',
]);
const CONTAINER_FIELDS = new Set([
  'name', 'image', 'imagePullPolicy', 'args', 'ports', 'env', 'startupProbe', 'livenessProbe', 'readinessProbe',
  'lifecycle', 'resources', 'securityContext', 'volumeMounts',
]);
function podSpec(deployment: K8sObject) {
  const template = (deployment.spec as { template: { metadata: { labels: Dict; annotations?: Dict }; spec: Dict } }).template;
  const spec = template.spec as {
    securityContext: Dict;
    automountServiceAccountToken: boolean;
    terminationGracePeriodSeconds: number;
    containers: Container[];
    volumes: { name: string; configMap?: { items: { key: string; path: string }[] }; secret?: { secretName: string; defaultMode: number }; emptyDir?: Dict }[];
    affinity?: Dict;
    topologySpreadConstraints?: Dict[];
  };
  return { metadata: template.metadata, spec, container: spec.containers[0] as Container };
}

// ---------------------------------------------------------------------------------------------------------------

describe('helm chart', { skip: NO_HELM }, () => {
  test('Chart.yaml is apiVersion v2 with a version and appVersion', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'portcullis');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+/);
    assert.match(String(chart.appVersion), /^\d+\.\d+\.\d+/);
  });

  test('every .Values path in the templates exists in values.yaml', () => {
    const missing: string[] = [];
    for (const [file, text] of Object.entries(templates)) {
      for (const match of text.matchAll(/\$?\.Values((?:\.[A-Za-z0-9_]+)+)/g)) {
        let value: unknown = defaultValues;
        for (const key of (match[1] as string).slice(1).split('.')) {
          value = isDict(value) && Object.hasOwn(value, key) ? value[key] : undefined;
          if (value === undefined) {
            missing.push(`${file}: ${match[0]}`);
            break;
          }
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('values.yaml passes helm lint --strict', () => {
    const result = lint();
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });

  const badValues: [string, Dict][] = [
    ['an unknown top-level key', { replicas: 3 }],
    ['an unknown nested key', { egress: { enable: true } }],
    ['a port out of range', { ports: { admin: 70000 } }],
    ['a config of another version', { config: { version: 'v2' } }],
    ['a Redis URL of another scheme', { redis: { url: 'http://redis:6379' } }],
    ['both a Redis URL and an existing Secret', { redis: { url: 'redis://redis:6379', existingSecret: 'redis' } }],
    ['a certificate Secret name with capitals', { certificates: [{ name: 'edge', secretName: 'Edge-TLS' }] }],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }],
    ['an image digest that is not sha256', { image: { digest: 'latest' } }],
    ['a policy file name with a slash', { policies: { 'a/b': { version: 'v1', policies: [] } } }],
    ['anti-affinity of an unknown kind', { podAntiAffinity: 'strict' }],
    ['an extra env var without a value', { extraEnv: [{ name: 'OTEL_EXPORTER_OTLP_HEADERS' }] }],
    ['an extra env var overriding the Redis URL', { extraEnv: [{ name: 'PORTCULLIS_REDIS_URL', value: 'redis://other:6379' }] }],
    ['an extra env var from an unknown source', { extraEnv: [{ name: 'X', valueFrom: { vaultRef: { path: 'secret/x' } } }] }],
  ];
  // The gateway's own schema, generated into the chart's: helm refuses these before any pod could.
  const badConfigs: [string, Dict, RegExp][] = [
    ['an unknown key in a listener', { config: { listeners: [{ name: 'edge', port: 8443, hosts: [], backlog: 5 }] } }, /config\.listeners\.0: Additional property backlog is not allowed/],
    ['a port that is not a number', { config: { admin: { port: 'admin' } } }, /config\.admin\.port: Invalid type/],
    ['a route without a match', { config: { routes: [{ name: 'app', upstream: 'app' }] } }, /config\.routes\.0: match is required/],
    ['an unknown log level', { config: { log: { level: 'verbose' } } }, /config\.log\.level/],
    ['an HMAC JWT algorithm', { config: { jwtProviders: [{ name: 'idp', issuer: 'i', jwksUri: 'https://i/jwks', algorithms: ['HS256'] }] } }, /config\.jwtProviders\.0\.algorithms\.0/],
  ];
  for (const [name, override, message] of [...badValues.map(([n, o]): [string, Dict, RegExp] => [n, o, /values don't meet the specifications of the schema/]), ...badConfigs]) {
    test(`helm lint --strict refuses ${name}`, () => {
      const result = lint(override);
      assert.notEqual(result.code, 0);
      assert.match(result.stdout + result.stderr, message);
    });
  }

  test('the default config and example policies are valid gateway configuration', () => {
    const { one } = render({ policies: examplePolicies });
    const data = one('ConfigMap').data as Record<string, string>;
    const config = parse(data['portcullis.yaml'] as string) as Dict;
    const validateConfig = new Ajv({ allErrors: true, strict: false }).compile(ConfigSchema);
    assert.ok(validateConfig(config), JSON.stringify(validateConfig.errors, null, 2));
    assert.deepEqual(config.policyFiles, ['policies/app.yaml']);
    const validatePolicies = new Ajv({ allErrors: true, strict: false }).compile(PolicyFileSchema);
    const policyFile = parse(data['policy-app.yaml'] as string);
    assert.ok(validatePolicies(policyFile), JSON.stringify(validatePolicies.errors, null, 2));
    assert.deepEqual(policyFile, examplePolicies.app);
  });

  test('default values render to parseable manifests of the expected kinds', () => {
    const { all } = render();
    const notes = renderNotes();
    assert.deepEqual(all.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ConfigMap/edge-portcullis',
      'Deployment/edge-portcullis',
      'NetworkPolicy/edge-portcullis',
      'PodDisruptionBudget/edge-portcullis',
      'Service/edge-portcullis',
      'Service/edge-portcullis-admin',
      'ServiceAccount/edge-portcullis',
    ]);
    for (const object of all) {
      assert.ok(object.apiVersion && object.metadata.name, `${object.kind} has apiVersion and name`);
      assert.equal(object.metadata.namespace, 'gateways');
      assert.equal(object.metadata.labels?.['app.kubernetes.io/instance'], 'edge');
    }
    assert.match(notes, /every request is denied/);
    assert.match(notes, /each replica counts rate limits on its own/);
  });

  test('every optional part renders when switched on', () => {
    const { all, one } = render({
      ...egressOn,
      autoscaling: { enabled: true },
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      redis: { url: 'redis://:secret@redis.data:6379' },
      restartOnConfigChange: true,
      podAntiAffinity: 'hard',
      admin: { tokenSecret: 'portcullis-admin' },
      policies: examplePolicies,
      extraEnv: [
        { name: 'OTEL_EXPORTER_OTLP_HEADERS', valueFrom: { secretKeyRef: { name: 'otlp-credentials', key: 'headers' } } },
        { name: 'OTEL_SERVICE_NAME', value: 'edge' },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ],
    });
    const kinds = all.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort();
    for (const expected of [
      'HorizontalPodAutoscaler/gateways/edge-portcullis',
      'ServiceMonitor/gateways/edge-portcullis',
      'Service/gateways/edge-portcullis-egress',
      'Secret/gateways/edge-portcullis-redis',
      'NetworkPolicy/shop/edge-portcullis-egress-only',
      'NetworkPolicy/payments/edge-portcullis-egress-only',
    ]) {
      assert.ok(kinds.includes(expected), `${expected} in ${kinds.join(', ')}`);
    }

    const hpa = one('HorizontalPodAutoscaler');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual((hpa.spec as Dict).scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'edge-portcullis' });
    const deployment = one('Deployment');
    assert.equal((deployment.spec as Dict).replicas, undefined, 'the HPA owns the replica count');

    const { metadata, spec, container } = podSpec(deployment);
    assert.match(String(metadata.annotations?.['checksum/config']), /^[0-9a-f]{64}$/);
    assert.deepEqual(container.env, [
      { name: 'PORTCULLIS_REDIS_URL', valueFrom: { secretKeyRef: { name: 'edge-portcullis-redis', key: 'url' } } },
      { name: 'OTEL_EXPORTER_OTLP_HEADERS', valueFrom: { secretKeyRef: { name: 'otlp-credentials', key: 'headers' } } },
      { name: 'OTEL_SERVICE_NAME', value: 'edge' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
    assert.deepEqual(one('Secret').stringData, { url: 'redis://:secret@redis.data:6379' });
    const config = parse((one('ConfigMap').data as Record<string, string>)['portcullis.yaml'] as string) as Dict;
    assert.deepEqual(config.redis, {}, 'redis.url comes from PORTCULLIS_REDIS_URL');
    assert.ok(container.ports.some((p) => p.name === 'egress' && p.containerPort === 3128));
    assert.ok(container.volumeMounts.some((m) => m.mountPath === '/etc/portcullis-admin' && m.readOnly));
    assert.ok('requiredDuringSchedulingIgnoredDuringExecution' in ((spec.affinity as Dict).podAntiAffinity as Dict));

    const monitor = one('ServiceMonitor');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack');
    const adminService = one('Service', 'edge-portcullis-admin');
    const selector = (monitor.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    for (const [k, v] of Object.entries(selector)) assert.equal(adminService.metadata.labels?.[k], v, `admin Service has ${k}`);
    assert.equal((adminService.spec as Dict).type, 'ClusterIP');
  });

  test('the config is mounted as a directory from the ConfigMap, never with subPath', () => {
    const { one } = render({ policies: examplePolicies });
    const { spec, container, metadata } = podSpec(one('Deployment'));
    const mount = container.volumeMounts.find((m) => m.name === 'config');
    assert.deepEqual(mount, { name: 'config', mountPath: '/etc/portcullis', readOnly: true });
    assert.ok(container.volumeMounts.every((m) => m.subPath === undefined));
    const volume = spec.volumes.find((v) => v.name === 'config');
    assert.deepEqual(volume?.configMap?.items, [
      { key: 'portcullis.yaml', path: 'portcullis.yaml' },
      { key: 'policy-app.yaml', path: 'policies/app.yaml' },
    ]);
    assert.deepEqual(container.args, ['run', '-c', '/etc/portcullis/portcullis.yaml', '--state-dir', '/var/run/portcullis']);
    assert.equal(metadata.annotations?.['checksum/config'], undefined, 'restartOnConfigChange is opt-in');
  });

  test('certificates come from Secrets, read-only and not world-readable', () => {
    const { one } = render();
    const { spec, container } = podSpec(one('Deployment'));
    for (const [name, secretName] of [['edge', 'portcullis-edge-tls'], ['svid', 'portcullis-svid']]) {
      assert.deepEqual(container.volumeMounts.find((m) => m.name === `cert-${name}`), {
        name: `cert-${name}`,
        mountPath: `/etc/portcullis-certs/${name}`,
        readOnly: true,
      });
      assert.deepEqual(spec.volumes.find((v) => v.name === `cert-${name}`)?.secret, { secretName, defaultMode: 0o440 });
    }
  });

  test('the Deployment runs non-root, read-only, without privileges, with probes on the admin port', () => {
    const text = templates['deployment.yaml'] as string;
    for (const needle of [
      'runAsNonRoot: true',
      'runAsUser: 10001',
      'readOnlyRootFilesystem: true',
      'allowPrivilegeEscalation: false',
      'type: RuntimeDefault',
      'automountServiceAccountToken: false',
      'livenessProbe:',
      'readinessProbe:',
    ]) {
      assert.ok(text.includes(needle), `deployment.yaml has ${needle}`);
    }
    assert.match(text, /capabilities:\s+drop:\s+- ALL/);

    const { one } = render();
    const { spec, container } = podSpec(one('Deployment'));
    assert.deepEqual(spec.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(one('ServiceAccount').automountServiceAccountToken, false);
    // A block indented one level too shallow still parses, as stray keys of the parent: only known fields allowed.
    assert.deepEqual(Object.keys(spec).filter((k) => !POD_SPEC_FIELDS.has(k)), []);
    assert.deepEqual(Object.keys(container).filter((k) => !CONTAINER_FIELDS.has(k)), []);
    assert.deepEqual((container as unknown as Dict).resources, defaultValues.resources);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'admin', scheme: 'HTTP' });
    assert.deepEqual(container.startupProbe.httpGet, { path: '/healthz', port: 'admin', scheme: 'HTTP' });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'admin', scheme: 'HTTP' });
    assert.ok(container.ports.some((p) => p.name === 'admin' && p.containerPort === 9901));
    // The only writable paths are emptyDirs.
    for (const path of ['/var/run/portcullis', '/tmp']) {
      const mount = container.volumeMounts.find((m) => m.mountPath === path);
      assert.ok(spec.volumes.find((v) => v.name === mount?.name)?.emptyDir, `${path} is an emptyDir`);
    }
  });

  test('an HTTPS admin plane is probed and scraped over HTTPS', () => {
    const tls = { certificate: { cert: '/etc/portcullis-certs/svid/tls.crt', key: '/etc/portcullis-certs/svid/tls.key' }, allowedSpiffeIds: ['spiffe://example.org/ns/ops/sa/admin'] };
    const { one } = render({ config: { admin: { tls } }, serviceMonitor: { enabled: true, tlsConfig: { insecureSkipVerify: true } } });
    const { container } = podSpec(one('Deployment'));
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) assert.equal(probe.httpGet.scheme, 'HTTPS');
    const endpoint = (one('ServiceMonitor').spec as { endpoints: Dict[] }).endpoints[0];
    assert.equal(endpoint?.scheme, 'https');
    assert.deepEqual(endpoint?.tlsConfig, { insecureSkipVerify: true });
  });

  test('the grace period outlasts the preStop pause plus the drain', () => {
    const { one, values } = render({ shutdown: { preStopSleepSeconds: 7, drainSeconds: 40 } });
    const { spec, container } = podSpec(one('Deployment'));
    const shutdown = values.shutdown as { preStopSleepSeconds: number; drainSeconds: number };
    assert.ok(spec.terminationGracePeriodSeconds > shutdown.preStopSleepSeconds + shutdown.drainSeconds);
    assert.deepEqual(container.lifecycle.preStop.exec.command, ['sleep', '7']);
  });

  test('replicas spread over zones and prefer distinct nodes by default', () => {
    const { one } = render();
    const { spec } = podSpec(one('Deployment'));
    const selector = { 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/instance': 'edge' };
    assert.deepEqual(spec.topologySpreadConstraints, [
      { topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
    ]);
    const preferred = ((spec.affinity as Dict).podAntiAffinity as Dict).preferredDuringSchedulingIgnoredDuringExecution;
    assert.deepEqual(preferred, [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }]);
    assert.deepEqual((one('PodDisruptionBudget').spec as Dict).selector, { matchLabels: selector });
  });

  test('the gateway NetworkPolicy opens only its ports and never the metadata address', () => {
    const { one } = render(egressOn);
    const policy = one('NetworkPolicy', 'edge-portcullis');
    const spec = policy.spec as { policyTypes: string[]; ingress: { ports: { port: number }[]; from?: Dict[] }[]; egress: { to: Dict[] }[] };
    assert.deepEqual(spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(spec.ingress.map((r) => r.ports.map((p) => p.port)), [[8443], [9901], [3128]]);
    assert.equal(spec.ingress[0]?.from, undefined, 'the edge port is open to any source by default');
    assert.deepEqual(spec.ingress[1]?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    assert.deepEqual(spec.ingress[2]?.from, [
      { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop', 'payments'] }] } },
    ]);
    assert.deepEqual(spec.egress, [
      {
        to: [
          { namespaceSelector: {} },
          { ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32', '169.254.170.2/32', '169.254.170.23/32', '100.100.100.200/32'] } },
          { ipBlock: { cidr: '::/0', except: ['fd00:ec2::254/128', 'fd00:ec2::23/128'] } },
        ],
      },
    ]);
  });

  test('egress mode: workloads leave their namespace only through the gateway and DNS', () => {
    const { all } = render(egressOn);
    const policies = all.filter((o) => o.metadata.name === 'edge-portcullis-egress-only');
    assert.deepEqual(policies.map((p) => p.metadata.namespace), ['shop', 'payments']);
    for (const policy of policies) {
      assert.deepEqual(policy.spec, {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gateways' } },
                podSelector: { matchLabels: { 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/instance': 'edge' } },
              },
            ],
            ports: [{ port: 3128, protocol: 'TCP' }],
          },
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
              },
            ],
            ports: [
              { port: 53, protocol: 'UDP' },
              { port: 53, protocol: 'TCP' },
            ],
          },
          { to: [{ podSelector: {} }] },
        ],
      });
    }
    const service = all.find((o) => o.kind === 'Service' && o.metadata.name === 'edge-portcullis-egress');
    assert.equal((service?.spec as Dict).type, 'ClusterIP');
  });

  const refused: [string, Dict, RegExp][] = [
    ['an admin plane bound to loopback', { config: { admin: { address: '127.0.0.1' } } }, /config\.admin\.address is 127\.0\.0\.1/],
    ['an admin port other than ports.admin', { ports: { admin: 9902 } }, /config\.admin\.port must equal ports\.admin/],
    ['no listener on ports.https', { ports: { https: 9443 } }, /no listener in config\.listeners uses ports\.https/],
    ['egress.enabled without config.egress', { egress: { enabled: true, networkPolicy: { workloadNamespaces: ['shop'] } } }, /egress\.enabled needs config\.egress/],
    ['config.egress while egress is disabled', { config: egressOn.config }, /config\.egress is set but egress\.enabled is false/],
    [
      'an egress proxy on loopback',
      { ...egressOn, config: { egress: { ...egressOn.config.egress, listener: { address: '127.0.0.1', port: 3128 } } } },
      /egress\.listener\.address must be 0\.0\.0\.0/,
    ],
    ['egress mode naming no workload namespace', { ...egressOn, egress: { enabled: true, networkPolicy: { workloadNamespaces: [] } } }, /workloadNamespaces must name/],
    ['a config.redis with no URL anywhere', { config: { redis: {} } }, /config\.redis has no url/],
  ];
  for (const [name, override, message] of refused) {
    test(`rendering refuses ${name}`, () => {
      assert.throws(() => render(override), message);
    });
  }

  test('every example values block of docs/kubernetes.md passes helm lint --strict', () => {
    const blocks = [...read(join(root, 'docs/kubernetes.md')).matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => parseAllDocuments(m[1]!));
    // Kubernetes manifests (cert-manager resources) are not values.
    const values = blocks.filter((docs) => docs.length === 1 && !('apiVersion' in (docs[0]!.toJS() as Dict))).map((docs) => docs[0]!.toJS() as Dict);
    assert.ok(values.length >= 2);
    for (const block of values) {
      // The egress example needs egress mode on; every example keeps the chart's own config around its part.
      const result = lint(block);
      assert.equal(result.code, 0, `${JSON.stringify(block)}\n${result.stdout}${result.stderr}`);
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read(join(root, 'Dockerfile'));
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = instructions.filter((l) => /^FROM /i.test(l));
  const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1) as string));

  test('is a multi-stage build on node 24 whose runtime stage copies only build results', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const from of stages) assert.match(from, /^FROM node:24-bookworm-slim\b/);
    assert.ok(instructions.some((l) => /^RUN npm ci\b(?!.*--omit=dev)/.test(l)), 'the build stage installs dev dependencies');
    assert.ok(instructions.some((l) => /^RUN npm run build\b/.test(l)));
    assert.ok(instructions.some((l) => /^RUN npm ci .*--omit=dev/.test(l)), 'production dependencies with --omit=dev');
    assert.ok(runtime.some((l) => /^COPY --from=\S+ \S*\/dist /.test(l)));
    assert.ok(runtime.some((l) => /^COPY --from=\S+ \S*\/node_modules /.test(l)));
    assert.ok(!runtime.some((l) => /^RUN npm /.test(l)), 'npm never runs in the runtime stage');
  });

  test('runs as uid 10001 with a node-based HEALTHCHECK on the admin port', () => {
    const user = runtime.filter((l) => /^USER /.test(l)).at(-1);
    assert.match(String(user), /^USER 10001(:10001)?$/);
    const healthcheck = runtime.find((l) => /^HEALTHCHECK /.test(l));
    assert.match(String(healthcheck), /CMD \["node", "-e", .*http:\/\/127\.0\.0\.1:9901\/healthz/);
    assert.ok(runtime.includes('ENV NODE_ENV=production'));
    assert.ok(runtime.includes('STOPSIGNAL SIGTERM'));
    assert.ok(runtime.includes('EXPOSE 8443 9901'));
    assert.ok(runtime.includes('ENTRYPOINT ["node", "dist/gateway/cli.js"]'));
    assert.match(String(runtime.find((l) => /^CMD /.test(l))), /^CMD \["run", "-c", "\/etc\/portcullis\/portcullis\.yaml", "--state-dir", "\/var\/run\/portcullis"\]$/);
  });

  test('.dockerignore keeps local state, tests and secrets out of the build context', () => {
    const ignored = read(join(root, '.dockerignore')).split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.portcullis', '.git', 'test', '**/*.pem', '**/*.key']) assert.ok(ignored.includes(entry), entry);
  });
});
