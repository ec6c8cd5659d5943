import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDevPki } from '../../../certs/dev-bootstrap.js';
import { configFixtures } from '../../helpers/config-material.js';
import { ConfigError, formatIssues, loadConfigFile, loadConfigText, type ConfigIssue } from '../../../gateway/config/load.js';

const fixtures = configFixtures();
const fixture = (name: string) => join(fixtures, name);

function issuesOf(load: () => unknown): ConfigIssue[] {
  try {
    load();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.message, formatIssues(err.issues));
    return [...err.issues];
  }
  assert.fail('expected the config to be rejected');
}

/** [file (relative to fixtures), line, column, JSON pointer, message] */
type Expected = [string, number, number, string, string];

const cases: { fixture: string; issues: Expected[] }[] = [
  {
    fixture: 'unknown-key.yaml',
    issues: [
      ['unknown-key.yaml', 11, 11, '/listeners/0/hosts/0/tls/minVerison', 'unknown key "minVerison"'],
      ['unknown-key.yaml', 19, 5, '/routes/0/retryCount', 'unknown key "retryCount"'],
    ],
  },
  {
    fixture: 'wrong-type.yaml',
    issues: [
      ['wrong-type.yaml', 4, 11, '/listeners/0/port', 'must be integer, not string'],
      ['wrong-type.yaml', 7, 20, '/listeners/0/hosts/0/hostnames', 'must be array, not string'],
      ['wrong-type.yaml', 14, 18, '/upstreams/0/connections', 'must be >= 1'],
      ['wrong-type.yaml', 17, 30, '/routes/0/match/path/prefix', '"api" does not match ^/'],
      ['wrong-type.yaml', 20, 10, '/log/level', 'must be one of: "fatal", "error", "warn", "info", "debug", "trace", "silent"'],
    ],
  },
  {
    fixture: 'missing-required.yaml',
    issues: [
      ['missing-required.yaml', 9, 11, '/listeners/0/hosts/0/tls', 'missing required key "upstream"'],
      ['missing-required.yaml', 14, 5, '/routes/0', 'missing required key "match"'],
    ],
  },
  {
    fixture: 'dangling-references.yaml',
    issues: [
      ['dangling-references.yaml', 13, 45, '/listeners/0/hosts/1/tls/upstream', 'no upstream named "postgres"'],
      ['dangling-references.yaml', 23, 27, '/routes/0/match/hosts/1', 'no virtual host named "wwww"'],
      ['dangling-references.yaml', 24, 15, '/routes/0/upstream', 'no upstream named "ap"'],
      ['dangling-references.yaml', 25, 26, '/routes/0/jwtProviders/1', 'no JWT provider named "crop"'],
      ['dangling-references.yaml', 29, 19, '/policies/0/routes/1', 'no route named "apis"'],
    ],
  },
  {
    fixture: 'duplicate-names.yaml',
    issues: [
      ['duplicate-names.yaml', 12, 21, '/listeners/0/hosts/1/hostnames/0', 'hostname "API.example.com." is already claimed by virtual host "www" on this listener'],
      ['duplicate-names.yaml', 16, 11, '/listeners/1/name', 'duplicate listener name "edge" (first defined at /listeners/0/name)'],
      ['duplicate-names.yaml', 18, 11, '/listeners/1/port', '127.0.0.1:8443 is already used by listener "edge"'],
      ['duplicate-names.yaml', 20, 15, '/listeners/1/hosts/0/name', 'duplicate virtual host name "www" (first defined at /listeners/0/hosts/0/name)'],
      ['duplicate-names.yaml', 27, 13, '/jwtProviders/1/name', 'duplicate JWT provider name "corp" (first defined at /jwtProviders/0/name)'],
      ['duplicate-names.yaml', 31, 11, '/upstreams/1/name', 'duplicate upstream name "app" (first defined at /upstreams/0/name)'],
      ['duplicate-names.yaml', 35, 13, '/routes/1/name', 'duplicate route name "all" (first defined at /routes/0/name)'],
      ['duplicate-names.yaml', 38, 13, '/policies/1/name', 'duplicate policy name "open" (first defined at /policies/0/name)'],
    ],
  },
  {
    fixture: 'bad-cidr.yaml',
    issues: [
      ['bad-cidr.yaml', 4, 5, '/trustedProxies/1', '"10.0.0.0/33" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      // inet_aton shorthand is refused: parsers disagree on what it means.
      ['bad-cidr.yaml', 5, 5, '/trustedProxies/2', '"192.168.1" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      ['bad-cidr.yaml', 7, 5, '/trustedProxies/4', '"proxy.internal" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
    ],
  },
  {
    fixture: 'ip-notations.yaml',
    issues: [
      ['ip-notations.yaml', 4, 18, '/trustedProxies/0', '"010.0.0.1" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      ['ip-notations.yaml', 14, 70, '/policies/0/rules/0/from/0/source/ipBlocks/0', '"127.1" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      ['ip-notations.yaml', 18, 7, '/egress/sourceIdentities/0', '"0x7f.1" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      ['ip-notations.yaml', 20, 7, '/egress/allow/0', '"010.0.0.0/8" is not an IP address or CIDR block (IPv4 as four decimal parts)'],
      ['ip-notations.yaml', 21, 17, '/egress/addressGuard', 'invalid address "127.1" (IPv4 as four decimal parts)'],
      ['ip-notations.yaml', 23, 7, '/egress/staticHosts/0', 'invalid address 0x7f.0.0.1 (IPv4 as four decimal parts)'],
    ],
  },
  {
    fixture: 'missing-files.yaml',
    issues: [
      ['missing-files.yaml', 10, 32, '/listeners/0/hosts/0/tls/certificate/cert', `${fixture('files/missing-cert.pem')}: file not found`],
      ['missing-files.yaml', 12, 21, '/listeners/0/hosts/0/tls/clientCa', `${fixture('files')}: not a regular file`],
      ['missing-files.yaml', 14, 40, '/jwtProviders/0/jwksFile', `${fixture('files/missing-jwks.json')}: file not found`],
      ['missing-files.yaml', 20, 15, '/policyFiles/0', `${fixture('policies/missing.yaml')}: file not found`],
      ['missing-files.yaml', 22, 80, '/egress/listener/tls/certificate/key', `${fixture('files/egress-key.pem')}: file not found`],
    ],
  },
  {
    fixture: 'yaml-syntax.yaml',
    issues: [
      ['yaml-syntax.yaml', 6, 1, '', 'Flow map in block collection must be sufficiently indented and end with a }'],
      ['yaml-syntax.yaml', 6, 1, '', 'Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ],
  },
  {
    fixture: 'duplicate-key.yaml',
    issues: [['duplicate-key.yaml', 6, 5, '/upstreams/0/url', 'duplicate key']],
  },
  {
    // Policy file issues carry the policy file's name and its own pointers and lines.
    fixture: 'bad-policy-file.yaml',
    issues: [
      ['policies/bad.yaml', 4, 13, '/policies/0/action', 'must be one of: "ALLOW", "DENY", "AUDIT"'],
      ['policies/bad.yaml', 6, 28, '/policies/0/rules/0/from/0/source/principal', 'unknown key "principal"'],
      ['policies/bad.yaml', 7, 5, '/policies/1', 'missing required key "name"'],
      ['policies/dangling.yaml', 3, 11, '/policies/0/name', `duplicate policy name "deny-all" (first defined at ${fixture('bad-policy-file.yaml')} /policies/0/name)`],
      ['policies/dangling.yaml', 5, 14, '/policies/0/routes/0', 'no route named "al"'],
    ],
  },
  {
    fixture: 'semantic-errors.yaml',
    issues: [
      ['semantic-errors.yaml', 12, 23, '/listeners/0/hosts/0/tls/clientAuth', 'client certificates are verified against the mesh trust bundle unless clientCa is set, and "mesh" is not configured'],
      ['semantic-errors.yaml', 15, 45, '/listeners/0/hosts/1/tls/upstream', 'passthrough upstream "app" must be tcp://host:port'],
      ['semantic-errors.yaml', 17, 5, '/jwtProviders/0', 'needs exactly one of jwksUri, jwks, jwksFile (none set)'],
      ['semantic-errors.yaml', 19, 5, '/jwtProviders/1', 'needs exactly one of jwksUri, jwks, jwksFile (found jwksUri, jwksFile)'],
      ['semantic-errors.yaml', 26, 22, '/upstreams/0/tls/spiffeId', 'only applies to https:// upstreams'],
      ['semantic-errors.yaml', 29, 5, '/upstreams/2', 'upstream secure: no CA bundle to verify it against (set tls.ca or mesh)'],
      ['semantic-errors.yaml', 30, 10, '/upstreams/2/url', 'mutual TLS (the default for https upstreams) presents the gateway SVID, so "mesh" must be configured; or set tls.mutual: false'],
      ['semantic-errors.yaml', 32, 35, '/routes/0/match/hosts/0', 'virtual host "db" passes TLS through; HTTP routes cannot match it'],
      ['semantic-errors.yaml', 32, 52, '/routes/0/upstream', 'upstream "pg" is tcp://127.0.0.1:5432; an HTTP route needs an http:// or https:// upstream'],
    ],
  },
  {
    // Passes the schema; refused by the components' own checks, which the loader runs.
    fixture: 'compile-errors.yaml',
    issues: [
      ['compile-errors.yaml', 12, 24, '/listeners/0/hosts/0/tls/certificate', `${fixture('files/other-key.txt')} is not the private key of ${fixture('files/tls-cert.txt')}`],
      ['compile-errors.yaml', 14, 21, '/listeners/0/hosts/0/tls/clientCa', `${fixture('files/not-pem.txt')}: no PEM certificate found`],
      ['compile-errors.yaml', 16, 5, '/jwtProviders/0', `jwksFile ${fixture('files/rsa-jwks.json')}: no key can verify ES256, so every token would be refused`],
      ['compile-errors.yaml', 25, 3, '/admin', '127.0.0.1:9901 is already used by listener "edge"'],
      ['compile-errors.yaml', 25, 14, '/admin/tokenFile', 'the token must be at least 16 characters'],
      ['compile-errors.yaml', 29, 7, '/egress/allow/0', 'needs hosts or cidrs'],
      ['compile-errors.yaml', 30, 15, '/egress/allow/1/name', 'duplicate egress rule name "nowhere" (first defined at /egress/allow/0/name)'],
      ['compile-errors.yaml', 32, 7, '/egress/staticHosts/0', '"*.example.com" must be an exact host name'],
      ['compile-errors.yaml', 34, 6, '/dev', `${fixture('state/pki/jwt-signing-key.json')}: file not found (the development PKI, which portcullis run without -c generates)`],
    ],
  },
  {
    // Every schema error at once, not just the first one.
    fixture: 'several-errors.yaml',
    issues: [
      ['several-errors.yaml', 4, 11, '/listeners/0/port', 'must be <= 65535'],
      ['several-errors.yaml', 5, 12, '/listeners/0/hosts', 'must have at least 1 item'],
      ['several-errors.yaml', 6, 5, '/listeners/0/backlog', 'unknown key "backlog"'],
      ['several-errors.yaml', 9, 10, '/upstreams/0/url', '"ftp://files.example.com" does not match ^(https?|tcp)://[^/?#]+/?$'],
      ['several-errors.yaml', 11, 11, '/routes/0/name', '"All" does not match ^[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?$ (lower-case name)'],
      ['several-errors.yaml', 12, 24, '/routes/0/match/methods/0', '"get" does not match ^[A-Z]+$'],
    ],
  },
];

describe('loadConfigFile rejects broken configs with every issue located', () => {
  for (const c of cases) {
    test(c.fixture, () => {
      const actual = issuesOf(() => loadConfigFile(fixture(c.fixture))).map((i) => [i.file, i.line, i.column, i.path, i.message]);
      const expected = c.issues.map(([file, ...rest]) => [fixture(file), ...rest]);
      assert.deepEqual(actual, expected);
    });
  }
});

describe('union errors name the branch that was meant', () => {
  const base = (tls: string) =>
    `version: v1\nlisteners:\n  - name: edge\n    port: 1\n    hosts:\n      - name: www\n        hostnames: [a.example]\n        tls: ${tls}\nupstreams: []\nroutes: []\n`;
  const table: [string, string, string][] = [
    ['{ mode: terminate }', '/listeners/0/hosts/0/tls', 'missing required key "certificate"'],
    ['{ mode: tunnel, upstream: x }', '/listeners/0/hosts/0/tls/mode', 'must be one of: "terminate", "passthrough"'],
    ['{ upstream: x }', '/listeners/0/hosts/0/tls', 'missing required key "mode" (one of: "terminate", "passthrough")'],
    ['{ mode: passthrough, upstream: x, extra: 1 }', '/listeners/0/hosts/0/tls/extra', 'unknown key "extra"'],
  ];
  for (const [tls, path, message] of table) {
    test(tls, () => {
      const issues = issuesOf(() => loadConfigText(base(tls), 'inline.yaml'));
      assert.deepEqual(issues.map((i) => [i.path, i.message]), [[path, message]]);
    });
  }

  test('no branch fits better than another: the choices are listed', () => {
    const text = 'version: v1\nlisteners: []\nupstreams: []\nroutes:\n  - { name: r, upstream: u, match: { path: { glob: /x } } }\n';
    const issues = issuesOf(() => loadConfigText(text, 'inline.yaml'));
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [['/routes/0/match/path', 'must be one of: {exact}, {prefix}']]);
  });
});

test('configured SPIFFE IDs follow the SPIFFE spec, as the certificates they must match do', () => {
  const withIds = (ids: string[]) => `version: v1
listeners: []
upstreams: []
routes: []
admin: { tls: { certificate: { cert: files/tls-cert.txt, key: files/tls-key.txt }, clientCa: files/ca-bundle.txt, allowedSpiffeIds: ${JSON.stringify(ids)} } }
`;
  const bad = ['spiffe://example.org/a%2Fb', 'spiffe://example.org/x:y@z', 'spiffe://example.org/./a', 'spiffe://example.org/a/..', 'spiffe://Example.org/a'];
  const issues = issuesOf(() => loadConfigText(withIds(['spiffe://example.org/ns/ops/sa/admin', ...bad]), fixture('inline.yaml')));
  assert.deepEqual(
    issues.map((i) => i.path),
    bad.map((_, i) => `/admin/tls/allowedSpiffeIds/${i + 1}`),
  );
  assert.doesNotThrow(() => loadConfigText(withIds(['spiffe://example.org/ns/ops/sa/admin', 'spiffe://example.org/.well-known']), fixture('inline.yaml')));
});

test('TLS listeners that ask for client certificates need a CA to check them: their own or the mesh bundle', () => {
  const text = `version: v1
listeners: []
upstreams: []
routes: []
admin: { tls: { certificate: { cert: files/tls-cert.txt, key: files/tls-key.txt }, allowedSpiffeIds: ['spiffe://example.org/ops'] } }
egress:
  listener: { port: 3128, tls: { certificate: { cert: files/tls-cert.txt, key: files/tls-key.txt } } }
  allow: []
`;
  const issues = issuesOf(() => loadConfigText(text, fixture('inline.yaml')));
  assert.deepEqual(
    issues.map((i) => [i.path, i.message]),
    [
      ['/admin/tls', 'clientCa or the mesh trust bundle is required'],
      ['/egress/listener/tls', 'clientCa or the mesh trust bundle is required'],
    ],
  );
});

describe('loading a good config', () => {
  const { config, files } = loadConfigFile(fixture('good.yaml'));

  test('resolves every file path against the file that named it', () => {
    const host = config.listeners[0]?.hosts[0];
    assert.ok(host?.tls.mode === 'terminate');
    assert.deepEqual(host.tls.certificate, { cert: fixture('files/tls-cert.txt'), key: fixture('files/tls-key.txt') });
    assert.equal(host.tls.clientCa, fixture('files/ca-bundle.txt'));
    assert.deepEqual(config.mesh?.svid, { cert: fixture('files/svid-cert.txt'), key: fixture('files/svid-key.txt') });
    assert.equal(config.mesh?.bundle, fixture('files/ca-bundle.txt'));
    assert.equal(config.jwtProviders?.[1]?.jwksFile, fixture('files/jwks.json'));
    assert.equal(config.upstreams[0]?.tls?.ca, fixture('files/ca-bundle.txt'));
    assert.deepEqual(config.egress?.listener.tls, {
      certificate: { cert: fixture('files/tls-cert.txt'), key: fixture('files/tls-key.txt') },
      clientCa: fixture('files/ca-bundle.txt'),
    });
    assert.equal(config.egress?.originate?.[0]?.tls.ca, fixture('files/ca-bundle.txt'));
    // Outputs are resolved too, but need not exist yet.
    assert.equal(config.egress?.audit?.file, fixture('logs/egress.jsonl'));
    assert.equal(config.stateDir, fixture('state'));
    assert.deepEqual(config.policyFiles, [fixture('policies/good.yaml')]);
  });

  test('appends policies from policy files after the inline ones', () => {
    assert.deepEqual(config.policies?.map((p) => p.name), ['api-users', 'admins-only']);
  });

  test('lists every file read, for hot reload', () => {
    assert.deepEqual(files, [fixture('good.yaml'), fixture('policies/good.yaml')]);
  });

  test('leaves unset fields unset instead of filling in defaults', () => {
    assert.equal(config.upstreams[1]?.connections, undefined);
    assert.equal(config.upstreams[1]?.tls, undefined);
    assert.equal(config.routes[0]?.maxBodyBytes, undefined);
    assert.equal(config.routes[1]?.maxBodyBytes, 0);
    assert.equal(config.jwtProviders?.[1]?.clockSkewSeconds, undefined);
  });
});

describe('loadConfigText', () => {
  const minimal = 'version: v1\nlisteners: []\nupstreams: []\nroutes: []\n';

  test('without vars the text is taken literally', () => {
    const issues = issuesOf(() => loadConfigText(`${minimal}stateDir: \${STATE_DIR}\nlog:\n  level: \${LEVEL}\n`, 'literal.yaml'));
    assert.deepEqual(issues.map((i) => [i.path, i.message]), [['/log/level', 'must be one of: "fatal", "error", "warn", "info", "debug", "trace", "silent"']]);
  });

  test('substitutes vars and fallbacks, and reports undefined ones where they are', () => {
    const text = `${minimal}stateDir: \${STATE_DIR}/x\ndev:\n  demoBackendPort: \${PORT:-9444}\n`;
    const { config } = loadConfigText(text, '/etc/portcullis/vars.yaml', { STATE_DIR: '/var/lib/pc' });
    assert.equal(config.stateDir, '/var/lib/pc/x');
    assert.deepEqual(config.dev, { demoBackendPort: 9444 });
    assert.deepEqual(loadConfigText(text, 'vars.yaml', { STATE_DIR: '/s', PORT: '1' }).config.dev, { demoBackendPort: 1 });

    const issues = issuesOf(() => loadConfigText(`${text}  tokenIssuerPort: \${MISSING}\n`, 'vars.yaml', { STATE_DIR: '/s' }));
    assert.deepEqual(issues[0], { file: 'vars.yaml', path: '', line: 8, column: 20, message: 'undefined variable ${MISSING}' });
  });

  test('rejects a document that is not a mapping', () => {
    const issues = issuesOf(() => loadConfigText('- a\n- b\n', 'list.yaml'));
    assert.deepEqual(issues, [{ file: 'list.yaml', path: '', line: 1, column: 1, message: 'must be object, not array' }]);
  });

  test('refuses an alias bomb (billion laughs) instead of expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [from, to] of [['a', 'b'], ['b', 'c'], ['c', 'd']]) bomb.push(`${to}: &${to} [${Array(10).fill(`*${from}`).join(', ')}]`);
    const issues = issuesOf(() => loadConfigText(bomb.join('\n'), 'bomb.yaml'));
    assert.equal(issues.length, 1);
    assert.match(issues[0]?.message ?? '', /resource exhaustion/);
  });

  test('loadConfigFile reports an unreadable main file as an issue', () => {
    const missing = fixture('does-not-exist.yaml');
    assert.deepEqual(issuesOf(() => loadConfigFile(missing)), [{ file: missing, path: '', message: 'cannot read config: file not found' }]);
  });
});

describe('formatIssues', () => {
  test('one line per issue: file:line:col: pointer: message', () => {
    const text = formatIssues([
      { file: 'a.yaml', path: '/routes/2/upstream', line: 7, column: 15, message: 'no upstream named "x"' },
      { file: 'a.yaml', path: '', line: 3, column: 1, message: 'duplicate key' },
      { file: 'b.yaml', path: '', message: 'cannot read config: file not found' },
    ]);
    assert.equal(
      text,
      ['a.yaml:7:15: /routes/2/upstream: no upstream named "x"', 'a.yaml:3:1: duplicate key', 'b.yaml: cannot read config: file not found'].join('\n'),
    );
  });
});

describe('the embedded default config', () => {
  const defaultYaml = fileURLToPath(new URL('../../../gateway/config/default.yaml', import.meta.url));
  const text = readFileSync(defaultYaml, 'utf8');
  // The names certs/dev-bootstrap.ts writes under <stateDir>/pki/ that the config names (the dev helpers read more).
  const pkiFiles = ['ca.pem', 'gateway.pem', 'gateway-key.pem', 'gateway-svid.pem', 'gateway-svid-key.pem'];

  test('names every PKI file it needs when the dev bootstrap has not run', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
    try {
      const issues = issuesOf(() => loadConfigText(text, defaultYaml, { STATE_DIR: stateDir }));
      const missing = new Set(issues.map((i) => i.message.replace(`${join(stateDir, 'pki')}/`, '')));
      const devPki = ['demo-backend.pem', 'demo-backend-key.pem', 'jwt-signing-key.json'];
      const expected = [
        ...pkiFiles.map((f) => `${f}: file not found`),
        ...devPki.map((f) => `${f}: file not found (the development PKI, which portcullis run without -c generates)`),
      ];
      assert.deepEqual([...missing].sort(), expected.sort());
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('loads once the PKI files exist, with ports overridable', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
    try {
      ensureDevPki(stateDir, { trustDomain: 'portcullis.dev', hostnames: ['localhost'] });

      const { config, files } = loadConfigText(text, defaultYaml, { STATE_DIR: stateDir });
      assert.deepEqual(files, [defaultYaml]);
      assert.equal(config.stateDir, stateDir);
      assert.equal(config.listeners[0]?.port, 8443);
      assert.equal(config.mesh?.bundle, join(stateDir, 'pki', 'ca.pem'));
      assert.equal(config.upstreams[0]?.url, 'https://127.0.0.1:9444');
      assert.equal(config.jwtProviders?.[0]?.jwksUri, 'http://127.0.0.1:9445/.well-known/jwks.json');
      assert.deepEqual(config.routes.map((r) => r.name), ['public', 'api', 'admin']);
      assert.deepEqual(config.policies?.map((p) => [p.name, p.action]), [['public', 'ALLOW'], ['api', 'ALLOW'], ['admin', 'ALLOW'], ['admin-deny', 'DENY']]);
      assert.deepEqual(config.dev, { demoBackendPort: 9444, tokenIssuerPort: 9445 });

      const ports = { STATE_DIR: stateDir, EDGE_PORT: '0', DEMO_BACKEND_PORT: '20001', TOKEN_ISSUER_PORT: '20002' };
      const overridden = loadConfigText(text, defaultYaml, ports).config;
      assert.equal(overridden.listeners[0]?.port, 0);
      assert.equal(overridden.upstreams[0]?.url, 'https://127.0.0.1:20001');
      assert.equal(overridden.jwtProviders?.[0]?.jwksUri, 'http://127.0.0.1:20002/.well-known/jwks.json');
      assert.deepEqual(overridden.dev, { demoBackendPort: 20001, tokenIssuerPort: 20002 });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
