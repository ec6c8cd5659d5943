// The chart's dashboard and alerts, rendered by the real `helm`: `promtool check rules` accepts the rendered rule
// groups, each alert is switched by its own value, the Redis alert exists only where Redis is configured, and every
// metric the rules and the dashboard query is one the gateway exports (gateway/core/metrics.ts) and documents
// (docs/operations.md).
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { METRIC_NAMES } from '../../../gateway/core/metrics.js';
import { helm, NO_HELM } from '../../helpers/helm.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(root, 'helm/portcullis');
const dashboardFile = join(chartDir, 'dashboards/portcullis.json');

type Dict = Record<string, unknown>;
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function render(values: Dict): Dict[] {
  const result = helm(['template', 'edge', chartDir, '--namespace', 'gateways'], values);
  assert.equal(result.code, 0, result.stderr);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as Dict | null)
    .filter((d): d is Dict => d !== null);
}

function ruleGroups(values: Dict): { name: string; rules: Rule[] }[] {
  const rule = render({ prometheusRule: { enabled: true }, ...values }).find((o) => o.kind === 'PrometheusRule');
  assert.ok(rule, 'a PrometheusRule is rendered');
  return (rule.spec as { groups: { name: string; rules: Rule[] }[] }).groups;
}

const alerts = (values: Dict = {}) => ruleGroups(values).flatMap((g) => g.rules.map((r) => r.alert));

/** The metric names a PromQL expression reads (histogram series by their family name). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(portcullis_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
}

function assertKnownMetrics(exprs: readonly string[]): void {
  const exported = new Set<string>(Object.values(METRIC_NAMES));
  const docs = readFileSync(join(root, 'docs/operations.md'), 'utf8');
  for (const name of new Set(exprs.flatMap(metricsIn))) {
    assert.ok(exported.has(name), `${name} is not in METRIC_NAMES`);
    assert.ok(docs.includes(`| \`${name}\` |`), `${name} has no row in docs/operations.md`);
  }
}

function promtoolCheckRules(t: TestContext, groups: unknown): void {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-'));
  const file = join(dir, 'rules.yaml');
  writeFileSync(file, stringify({ groups }));
  const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  if (result.error) return void t.skip('promtool is not installed (Debian package prometheus; .ci/run installs it): rules not checked');
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /SUCCESS: \d+ rules found/);
}

describe('alerts (PrometheusRule)', { skip: NO_HELM }, () => {
  test('off by default; on, every alert passes promtool check rules', (t) => {
    assert.ok(!render({}).some((o) => o.kind === 'PrometheusRule'));
    const groups = ruleGroups({ redis: { url: 'redis://redis.data:6379' } });
    promtoolCheckRules(t, groups);
    const rules = groups.flatMap((g) => g.rules);
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      'PortcullisAuditWriteFailing',
      'PortcullisCertificateExpiring',
      'PortcullisErrorRatioHigh',
      'PortcullisInternalErrors',
      'PortcullisJwksStale',
      'PortcullisRedisDown',
      'PortcullisReloadRejected',
    ]);
    for (const rule of rules) {
      assert.match(rule.expr, /namespace="gateways", job="edge-portcullis-admin"/, `${rule.alert} is scoped to this release`);
      assert.ok(['warning', 'critical'].includes(rule.labels.severity!), rule.alert);
      assert.ok(rule.annotations.summary && rule.annotations.description, rule.alert);
    }
    assertKnownMetrics(rules.map((r) => r.expr));
  });

  test('the Redis alert exists only where Redis is configured', () => {
    assert.ok(!alerts().includes('PortcullisRedisDown'));
    assert.ok(alerts({ redis: { existingSecret: 'redis' } }).includes('PortcullisRedisDown'));
    assert.ok(alerts({ config: { redis: { url: 'redis://redis.data:6379' } } }).includes('PortcullisRedisDown'));
  });

  test('each alert is switched on its own, and its thresholds come from values.yaml', () => {
    const all = alerts({ redis: { url: 'redis://redis.data:6379' } });
    const switches: Record<string, string> = {
      certificateExpiring: 'PortcullisCertificateExpiring',
      jwksStale: 'PortcullisJwksStale',
      reloadRejected: 'PortcullisReloadRejected',
      redisDown: 'PortcullisRedisDown',
      errorRatio: 'PortcullisErrorRatioHigh',
      internalErrors: 'PortcullisInternalErrors',
      auditWriteFailures: 'PortcullisAuditWriteFailing',
    };
    for (const [key, alert] of Object.entries(switches)) {
      const left = alerts({ redis: { url: 'redis://redis.data:6379' }, prometheusRule: { enabled: true, rules: { [key]: { enabled: false } } } });
      assert.deepEqual(left, all.filter((a) => a !== alert), key);
    }
    const tuned = ruleGroups({ prometheusRule: { enabled: true, rules: { certificateExpiring: { days: 30 }, errorRatio: { ratio: 0.01, for: '5m' } } } })[0]!.rules;
    assert.match(tuned.find((r) => r.alert === 'PortcullisCertificateExpiring')!.expr, /< 30 \* 86400$/);
    const ratio = tuned.find((r) => r.alert === 'PortcullisErrorRatioHigh')!;
    assert.deepEqual([ratio.expr.endsWith('> 0.01'), ratio.for], [true, '5m']);
  });

  test('helm lint --strict refuses a rule value of the wrong shape', () => {
    const bad = helm(['lint', '--strict', chartDir], { prometheusRule: { enabled: true, rules: { errorRatio: { ratio: 5 } } } });
    assert.notEqual(bad.code, 0);
    const good = helm(['lint', '--strict', chartDir], { prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } });
    assert.equal(good.code, 0, good.stdout + good.stderr);
  });
});

describe('Grafana dashboard', { skip: NO_HELM }, () => {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { uid: string; panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[] };

  test('rendered as a ConfigMap with the sidecar label, holding dashboards/portcullis.json as is', () => {
    assert.ok(!render({}).some((o) => (o.metadata as Dict).name === 'edge-portcullis-dashboard'));
    const map = render({ grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Security' } } }).find((o) => (o.metadata as Dict).name === 'edge-portcullis-dashboard');
    assert.ok(map);
    const metadata = map.metadata as { labels: Record<string, string>; annotations: Record<string, string> };
    assert.equal(metadata.labels.grafana_dashboard, '1');
    assert.equal(metadata.annotations.grafana_folder, 'Security');
    assert.deepEqual(JSON.parse((map.data as Record<string, string>)['portcullis.json']!), dashboard);
  });

  test('covers what an operator watches, with unique panel ids, on metrics the gateway exports and documents', () => {
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length);
    const titles = panels.map((p) => p.title);
    for (const topic of ['Requests by route', 'Authorization denials by policy', 'Latency', 'Upstream health', 'Certificate expiry', 'JWKS state', 'Egress denials by destination', 'Egress bytes', 'Internal errors']) {
      assert.ok(titles.includes(topic), `a panel "${topic}" in ${titles.join(', ')}`);
    }
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.every((e) => e.includes('namespace="$namespace", job=~"$job"')), 'every query follows the namespace and gateway pickers');
    assertKnownMetrics(exprs);
  });
});
