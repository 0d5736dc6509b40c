import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { DASHBOARDS, dashboardsDir, renderDashboard } from './generate.ts';

test('the committed dashboards are what dashboards/src generates (run `npm run dashboards:generate`)', async () => {
  const committed = (await fs.readdir(dashboardsDir)).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(
    committed,
    Object.keys(DASHBOARDS).sort(),
    'every dashboards/*.json has a builder, and every builder a file'
  );
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    const text = await fs.readFile(path.join(dashboardsDir, file), 'utf8');
    assert.ok(
      text === renderDashboard(build),
      `dashboards/${file} is out of date with dashboards/src (run \`npm run dashboards:generate\`)`
    );
  }
});

test('generating twice gives the same text (no clock, no randomness in the output)', () => {
  for (const build of Object.values(DASHBOARDS)) assert.equal(renderDashboard(build), renderDashboard(build));
});
