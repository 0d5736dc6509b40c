import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../core/config.ts';
import { CONFIG_KEYS } from './config.ts';

/**
 * The README's Configuration tables name every environment variable the service reads, so a key added to a
 * feature's config.ts without a row fails here. A row's first cell may name several keys and abbreviate
 * the later ones (`SLACK_CHANNEL_P1` / `_P2`: the first key's prefix, or the whole first key, plus the
 * suffix); `PREFIX_*` sends the reader to the component README named in the row, whose table must then
 * list each of those keys itself.
 */
const tableKeyCells = (file: string) =>
  fs
    .readFileSync(path.join(projectRoot, file), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => ({ cell: line.split('|')[1]!, row: line }));

function documentedKeys(file: string): { keys: Set<string>; wildcards: Array<{ prefix: string; readme: string }> } {
  const keys = new Set<string>();
  const wildcards: Array<{ prefix: string; readme: string }> = [];
  for (const { cell, row } of tableKeyCells(file)) {
    const names = [...cell.matchAll(/`([A-Z_][A-Z0-9_]*\*?)`/g)].map((m) => m[1]!);
    const first = names[0] ?? '';
    for (const name of names) {
      if (name.endsWith('*')) {
        const readme = /see ([\w/.-]+README\.md)/.exec(row)?.[1];
        assert.ok(readme, `${file}: the row for ${name} names the README that lists those keys`);
        wildcards.push({ prefix: name.slice(0, -1), readme });
      } else if (name.startsWith('_')) {
        keys.add(first + name);
        keys.add(first.replace(/_[A-Z0-9]+$/, '') + name);
      } else keys.add(name);
    }
  }
  return { keys, wildcards };
}

test('every configuration key the service reads has a row in the README (or the component README it points to)', () => {
  const { keys, wildcards } = documentedKeys('README.md');
  const missing = CONFIG_KEYS.filter((key) => {
    if (keys.has(key)) return false;
    const wildcard = wildcards.find((w) => key.startsWith(w.prefix));
    return !wildcard || !documentedKeys(wildcard.readme).keys.has(key);
  });
  assert.deepEqual(missing, [], `add a row to README.md's Configuration for: ${missing.join(', ')}`);
  assert.ok(CONFIG_KEYS.length > 100 && CONFIG_KEYS.includes('DATABASE_URL'), 'the keys come from the real schema');
});
