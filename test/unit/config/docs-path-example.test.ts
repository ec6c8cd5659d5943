// The path-options YAML in docs/policies.md, loaded through the real loader and compiled into a route, so
// the documented fields exist and do what the page says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { loadConfigText } from '../../../gateway/config/load.js';
import { GatewayError } from '../../../gateway/core/errors.js';
import { createPathStage } from '../../../gateway/ingress/stages/normalize-path.js';
import { compileRoute, createRouteTable } from '../../../gateway/ingress/stages/route.js';
import { configFixtures } from '../../helpers/config-material.js';

const read = (relative: string) => readFileSync(fileURLToPath(new URL(relative, import.meta.url)), 'utf8');

function docsExample(): Record<string, unknown> {
  const blocks = [...read('../../../docs/policies.md').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes('# docs example: path options'));
  assert.ok(block, 'the example is in docs/policies.md');
  return parse(block) as Record<string, unknown>;
}

test('the documented path options load, and the route reads paths as documented', () => {
  const example = docsExample() as { pathCase: string; routes: unknown[] };
  // The fixtures with real certificates generated for the test (the committed ones are placeholders).
  const goodFile = join(configFixtures(), 'good.yaml');
  const config = parse(readFileSync(goodFile, 'utf8')) as Record<string, unknown> & { routes: unknown[] };
  config.pathCase = example.pathCase;
  config.routes = [...example.routes, ...config.routes];
  const loaded = loadConfigText(stringify(config), goodFile).config;
  assert.equal(loaded.pathCase, 'insensitive');

  const routes = createRouteTable(loaded.routes.map((r) => compileRoute(r, { maxBodyBytes: 1, upstreamTimeoutMs: () => 1, pathCase: loaded.pathCase })));
  const paths = createPathStage(loaded.routes);
  const select = (target: string) => {
    const normalized = paths.normalize(target);
    return { route: routes.select('www', 'GET', normalized, [])?.name, path: normalized.path, forwardPath: normalized.forwardPath };
  };
  assert.deepEqual(select('/shop;v=1/cart;jsessionid=x'), { route: 'legacy-java', path: '/shop/cart', forwardPath: '/shop;v=1/cart;jsessionid=x' });
  assert.deepEqual(select('/SHOP/%ef%bd%81'), { route: 'legacy-java', path: '/SHOP/a', forwardPath: '/SHOP/a' });
  assert.equal(select('/shop/100%25').route, 'legacy-java');
  assert.equal(select('/API/orders').route, 'api');
  assert.throws(() => select('/api;x/orders'), (err: unknown) => err instanceof GatewayError && err.reason === 'path_parameters');
});
