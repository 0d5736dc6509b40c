import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasRole, matchRoutePath, pluginRoutes } from './proxy.ts';

// Expected values follow Grafana's pkg/web/tree.go (Tree.Add / Tree.Match) as pkg/api/pluginproxy/pluginproxy.go
// uses it: one leading and one trailing '/' trimmed, `*` matching one or more further segments.
test('route paths match as in Grafana’s route tree', () => {
  const cases: Array<[string, string, string | null]> = [
    ['freeze/*', 'freeze', null],
    ['freeze/*', 'freeze/', null],
    ['freeze/*', 'freeze/freezes/12', 'freezes/12'],
    ['freeze/*', 'freeze/freezes/12/', 'freezes/12'],
    ['freeze/*', 'freezes/12', null],
    ['bulk-rating/jobs', 'bulk-rating/jobs', ''],
    ['bulk-rating/jobs', 'bulk-rating/jobs/', ''],
    ['bulk-rating/jobs', '/bulk-rating/jobs', ''],
    ['bulk-rating/jobs', 'bulk-rating/jobs/1', null],
    ['bulk-rating/jobs', 'bulk-rating', null],
    ['*', '', ''],
    ['*', 'regions', 'regions'],
    ['*', 'bulk-rating/jobs/1/results/', 'bulk-rating/jobs/1/results'],
    ['regions/:id', 'regions/us-east-1', ''],
    ['regions/:id', 'regions', null],
    ['bulk%20rating', 'bulk%20rating', null],
    ['bulk rating', 'bulk%20rating', ''],
  ];
  for (const [pattern, path, expected] of cases) assert.equal(matchRoutePath(pattern, path), expected, `${pattern} vs ${path}`);
});

test('reqRole is the org role alone: a server admin with a Viewer org role is a Viewer', () => {
  assert.equal(hasRole({ login: 'root', role: 'Viewer', grafanaAdmin: true }, 'Editor'), false);
  assert.equal(hasRole({ login: 'ana', role: 'Admin' }, 'Admin'), true);
});

test('plugin.json routes: reqAction is emulated, an unknown reqRole and unemulated features are refused', () => {
  assert.deepEqual(pluginRoutes({ routes: [{ path: 'x', reqRole: 'Editor', reqAction: 'a.b:c' }] }), [{ path: 'x', reqRole: 'Editor', reqAction: 'a.b:c' }]);
  assert.throws(() => pluginRoutes({ routes: [{ path: 'x', reqRole: 'Editr' }] }), /reqRole 'Editr'/);
  assert.throws(() => pluginRoutes({ routes: [{ path: 'x', tokenAuth: {} }] }), /tokenAuth not emulated/);
});
