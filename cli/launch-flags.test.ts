import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { projectRoot } from '../core/config.ts';

/**
 * The service's V8 flag is given where Control Room is launched, not in code: V8 sizes the heap when the
 * process starts, and setting the flag later (v8.setFlagsFromString) changes nothing for the main thread.
 * So every launch point must carry the same flag: `npm start`, the CLI's shebang (`npx controlroom`), the
 * image's NODE_OPTIONS (every compose service runs the image), and the receiver benchmark, which must
 * measure the receiver as it is launched.
 */
const FLAG = '--max-semi-space-size=8';
const read = (file: string) => fs.readFileSync(path.join(projectRoot, file), 'utf8');

describe('the young-generation flag is given wherever Control Room is launched', () => {
  test('npm start, the receiver benchmark, the CLI shebang and the image all carry it', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.start!, new RegExp(`^node ${FLAG} bin/controlroom\\.mjs start$`));
    assert.match(scripts['bench:receiver']!, new RegExp(`^node ${FLAG} `));
    assert.equal(read('bin/controlroom.mjs').split('\n')[0], `#!/usr/bin/env -S node ${FLAG}`);
    assert.match(read('Dockerfile'), new RegExp(`^ENV NODE_OPTIONS=${FLAG}$`, 'm'));
    // No compose service replaces the image's NODE_OPTIONS.
    for (const file of ['docker-compose.yml', 'docker-compose.ha.yml']) assert.doesNotMatch(read(file), /NODE_OPTIONS/);
  });

  test('both ways of giving it bound the young generation on this Node (the semi-spaces stay at 8 MB)', () => {
    // Enough short-lived garbage for V8 to grow the young generation to its bound.
    const probe = `
      let kept = [];
      for (let i = 0; i < 3e6; i++) { kept.push({ i, s: 'x' + i }); if (kept.length > 100000) kept = []; }
      const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      console.log(space.space_size);`;
    const newSpace = (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const run = spawnSync(process.execPath, [...args, '-e', probe], {
        env: { ...process.env, NODE_OPTIONS: '', ...env },
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, run.stderr);
      return Number(run.stdout.trim());
    };
    const MB = 1024 * 1024;
    const unbounded = newSpace([]);
    // Two semi-spaces of 8 MB at most.
    assert.ok(newSpace([FLAG]) <= 16 * MB, 'the command-line flag');
    assert.ok(newSpace([], { NODE_OPTIONS: FLAG }) <= 16 * MB, 'NODE_OPTIONS');
    // Without it V8 grows the young generation past that (so the check above can fail).
    assert.ok(unbounded > 16 * MB, `V8's default young generation here is only ${unbounded / MB} MB`);
  });
});
