import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../core/config.ts';

/**
 * The folders whose `*.yml` files Prometheus evaluates: the SLO rules generated from slos.yaml and the
 * hand-written rule files, one per concern. A new rule file dropped into either folder is loaded by every
 * Prometheus this project runs (tests, `controlroom start`, docker-compose) and checked by promtool.
 */
export const RULE_DIRS = [path.join(projectRoot, 'alerting', 'generated'), path.join(projectRoot, 'alerting', 'rules')];

/** Every rule file, sorted, as absolute paths. */
export function ruleFiles(): string[] {
  return RULE_DIRS.flatMap((dir) =>
    fs
      .readdirSync(dir)
      .filter((file) => file.endsWith('.yml'))
      .sort()
      .map((file) => path.join(dir, file))
  );
}
