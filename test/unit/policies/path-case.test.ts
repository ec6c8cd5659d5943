// How policies compare path case: by default each rule fails closed under both readings (DENY paths and
// ALLOW notPaths fold, DENY notPaths and ALLOW paths do not); `pathCase` on the route makes it uniform.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../../policies/compile.js';
import { evaluate } from '../../../policies/evaluate.js';
import type { Policy } from '../../../policies/schema.js';
import type { RequestAttributes } from '../../../policies/types.js';
import { request } from './request.js';

const allowAll: Policy = { name: 'allow-all', action: 'ALLOW', rules: [{}] };
const denyPaths: Policy = { name: 'deny', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*', '/keys/{*}/Raw'] } }] }] };
const denyNotPaths: Policy = { name: 'deny', action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/public/*'] } }] }] };
const allowPaths: Policy = { name: 'allow', action: 'ALLOW', rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] };
const allowNotPaths: Policy = { name: 'allow', action: 'ALLOW', rules: [{ to: [{ operation: { notPaths: ['/api/internal*'] } }] }] };

type Case = [path: string, pathCase: RequestAttributes['pathCase'], allowed: boolean];

function table(title: string, policies: Policy[], cases: Case[]): void {
  const set = compilePolicies(policies);
  describe(title, () => {
    for (const [path, pathCase, allowed] of cases) {
      test(`${path} (${pathCase ?? 'default'})`, () => {
        const req = request({ path, ...(pathCase ? { pathCase } : {}) });
        assert.equal(evaluate(set, 'r', req).allowed, allowed);
      });
    }
  });
}

table('DENY paths', [denyPaths, allowAll], [
  ['/admin', undefined, false],
  ['/ADMIN', undefined, false],
  ['/Admin/users', undefined, false],
  ['/keys/k1/raw', undefined, false],
  ['/administrator', undefined, true],
  ['/ADMIN', 'sensitive', true],
  ['/ADMIN', 'insensitive', false],
]);

table('DENY notPaths', [denyNotPaths, allowAll], [
  ['/public/a', undefined, true],
  ['/PUBLIC/a', undefined, false],
  ['/PUBLIC/a', 'insensitive', true],
]);

table('ALLOW paths', [allowPaths], [
  ['/api/x', undefined, true],
  ['/API/x', undefined, false],
  ['/API/x', 'insensitive', true],
  ['/API/x', 'sensitive', false],
]);

table('ALLOW notPaths', [allowNotPaths], [
  ['/api/orders', undefined, true],
  ['/api/internal', undefined, false],
  ['/api/INTERNAL/keys', undefined, false],
  ['/api/INTERNAL/keys', 'sensitive', true],
]);
