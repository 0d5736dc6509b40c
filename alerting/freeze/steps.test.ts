import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JobHelpers } from 'graphile-worker';
import { createLogger } from '../../core/logger.ts';
import { FakeGitHub } from '../../testing/fake-github.ts';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.ts';
import { createGitHubClient, FreezeStatusPublisher } from './github.ts';
import { FREEZE_DEPLOYMENT_TASK, freezeTasks } from './jobs.ts';
import { loadDecision } from './state.ts';

/**
 * Each GitHub step fails once in turn; retried as the job queue would, every status and every
 * deployment review reaches GitHub exactly once.
 */
const REPO = 'acme/tms';
const POLICY = { quietPeriodSeconds: 1800 };
let db: TestDatabase;
let github: FakeGitHub;
let publisher: FreezeStatusPublisher;

before(async () => {
  db = await createTestDatabase();
  github = await FakeGitHub.start();
  const config = {
    GITHUB_API_URL: github.url,
    GITHUB_TOKEN: 'ghp_test_token',
    GITHUB_REPOSITORIES: REPO,
    FREEZE_EXCEPTION_LABELS: 'p0-fix',
    CONTROLROOM_PUBLIC_URL: undefined,
    GITHUB_APP_ID: undefined,
    GITHUB_APP_PRIVATE_KEY: undefined,
    GITHUB_APP_INSTALLATION_ID: undefined,
  };
  publisher = new FreezeStatusPublisher(db.pool, createGitHubClient(config)!, config);
  await db.pool.query(
    `INSERT INTO controlroom.freeze_actions (kind, reason, actor) VALUES ('freeze', 'hold releases for the test', 'test')`
  );
});
after(async () => {
  await github.close();
  await db.drop();
});

/** Runs a step until it succeeds, as the job queue retries a failed job (bounded). */
async function retried(step: () => unknown): Promise<number> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      await step();
      return attempt;
    } catch {
      // the queue would retry after a backoff
    }
  }
  throw new Error('still failing after 5 attempts');
}

describe('GitHub steps', () => {
  test('a sync failing at its list call, or at any one status, sets each head once', async () => {
    const decision = await loadDecision(db.pool, POLICY);
    assert.equal(decision.frozen, true);
    // Call 1 lists the pull requests; calls 2..4 set the three statuses. Fail each in turn.
    for (const failing of [1, 2, 3, 4]) {
      const shas = [1, 2, 3].map((n) => `${failing}${n}`.padEnd(6, 'f'));
      github.pulls.set(
        REPO,
        shas.map((sha, i) => ({ number: failing * 10 + i, sha, labels: [] }))
      );
      github.failNth(failing);
      assert.equal(await retried(() => publisher.syncAll(decision)), 2, `failing call ${failing}: one retry`);
      for (const sha of shas) {
        const posts = github.statusHistory.filter((s) => s.sha === sha);
        assert.equal(posts.length, 1, `failing call ${failing}: ${sha} set ${posts.length} times`);
        assert.equal(posts[0]!.state, 'failure');
      }
    }
  });

  test('a deployment review is posted once when the review call or the audit after it fails', async () => {
    const task = freezeTasks(db.pool, POLICY, publisher, createLogger('silent'))[FREEZE_DEPLOYMENT_TASK]!;
    const run = (callbackUrl: string, deploymentId: number) =>
      task({ callbackUrl, environment: 'production', repo: REPO, deploymentId }, undefined as unknown as JobHelpers);
    const reviewsOf = (run: number) =>
      github.reviews.filter((r) => r.path.endsWith(`/runs/${run}/deployment_protection_rule`));
    const audited = async (deploymentId: number) =>
      Number(
        (
          await db.pool.query(
            `SELECT count(*) AS n FROM audit_log WHERE target = $1 AND action = 'github.deployment_rejected'`,
            [`${REPO}/deployments/${deploymentId}`]
          )
        ).rows[0].n
      );

    // Step 1 fails: GitHub answers 500 to the review.
    github.failNth(1);
    assert.equal(
      await retried(() => run(`${github.url}/repos/${REPO}/actions/runs/71/deployment_protection_rule`, 71)),
      2
    );
    assert.equal(reviewsOf(71).length, 1);
    assert.equal(await audited(71), 1);

    // Step 2 fails: the review went through, then the audit entry could not be written.
    await db.pool.query(`
      CREATE SEQUENCE test_audit_failures;
      CREATE FUNCTION test_fail_first_review_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.target = '${REPO}/deployments/72' AND nextval('test_audit_failures') = 1 THEN
          RAISE EXCEPTION 'audit store unavailable';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_fail_first_review_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_fail_first_review_audit();`);
    try {
      assert.equal(
        await retried(() => run(`${github.url}/repos/${REPO}/actions/runs/72/deployment_protection_rule`, 72)),
        2
      );
    } finally {
      await db.pool.query(
        `DROP TRIGGER test_fail_first_review_audit ON audit_log; DROP FUNCTION test_fail_first_review_audit(); DROP SEQUENCE test_audit_failures`
      );
    }
    assert.equal(reviewsOf(72).length, 1, 'reviewed once although the job ran twice');
    assert.equal(reviewsOf(72)[0]!.state, 'rejected');
    assert.equal(await audited(72), 1);
  });
});
