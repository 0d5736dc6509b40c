import type { TaskList } from 'graphile-worker';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { enqueueJob } from '../../core/jobs.ts';
import { once } from '../../core/side-effects.ts';
import { FREEZE_CHANGED_TASK } from '../tasks.ts';
import type { FreezeStatusPublisher, PullRequestRef } from './github.ts';
import { loadDecision, type FreezeDecision, type FreezePolicy } from './state.ts';

export const FREEZE_SYNC_TASK = 'freeze_sync';
export const FREEZE_PR_TASK = 'freeze_pr_status';
export const FREEZE_DEPLOYMENT_TASK = 'freeze_deployment_review';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Decide the freeze again and bring GitHub in line (coalesced: one pending, plus one timed). */
      freeze_sync: Record<string, never>;
      /** Set the freeze status of one pull request head (from a pull_request webhook). */
      freeze_pr_status: PullRequestRef;
      /** Answer one deployment protection rule request (from a deployment_protection_rule webhook). */
      freeze_deployment_review: { callbackUrl: string; environment: string; repo: string; deploymentId: number | null };
    }
  }
}

const ACTOR = 'controlroom:release-freeze';
/** Even with nothing timed, resync now and then: it catches pull requests whose webhooks were missed. */
const RESYNC_EVERY_MS = 10 * 60_000;

/**
 * Asks for the freeze to be decided again and GitHub brought in line (coalesced: one pending at a time).
 * One named queue: syncs run one at a time across every instance, so a sync that decided on older alerts
 * never publishes after one that decided on newer ones (a job key alone does not stop that: a sync queued
 * while another runs, e.g. by the other instance starting, is a second job).
 */
export const requestFreezeSync = (db: Parameters<typeof enqueueJob>[0], runAt?: Date) =>
  enqueueJob(
    db,
    FREEZE_SYNC_TASK,
    {},
    runAt
      ? { jobKey: `${FREEZE_SYNC_TASK}:timer`, runAt, queueName: FREEZE_SYNC_TASK }
      : { jobKey: FREEZE_SYNC_TASK, queueName: FREEZE_SYNC_TASK }
  );

/** Stores the decision when it differs from the one last published; returns whether it changed. */
async function publish(pool: Pool, decision: FreezeDecision): Promise<boolean> {
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<{ frozen: boolean; cause: string; reason: string }>(
      `SELECT frozen, cause, reason FROM controlroom.freeze_state WHERE id = 1 FOR UPDATE`
    );
    const last = rows[0]!;
    if (last.frozen === decision.frozen && last.cause === decision.cause && last.reason === decision.reason)
      return false;
    await client.query(
      `UPDATE controlroom.freeze_state SET frozen = $1, cause = $2, reason = $3, updated_at = now(),
              since = CASE WHEN frozen = $1 THEN since ELSE now() END
        WHERE id = 1`,
      [decision.frozen, decision.cause, decision.reason]
    );
    const history = await client.query<{ id: string }>(
      `INSERT INTO controlroom.freeze_history (frozen, cause, reason) VALUES ($1, $2, $3) RETURNING id::text AS id`,
      [decision.frozen, decision.cause, decision.reason]
    );
    const historyId = history.rows[0]!.id;
    // One queue: the changes are handed on in the order they happened.
    await enqueueJob(
      client,
      FREEZE_CHANGED_TASK,
      { historyId },
      { jobKey: `${FREEZE_CHANGED_TASK}:${historyId}`, queueName: FREEZE_CHANGED_TASK }
    );
    const action =
      last.frozen === decision.frozen
        ? 'release_freeze.reason_changed'
        : decision.frozen
          ? 'release_freeze.frozen'
          : 'release_freeze.lifted';
    await audit(client, {
      actor: ACTOR,
      action,
      target: 'release_freeze',
      payload: { cause: decision.cause, reason: decision.reason, previous: last },
    });
    return true;
  });
}

export function freezeTasks(
  pool: Pool,
  policy: FreezePolicy,
  publisher: FreezeStatusPublisher | null,
  logger: Logger
): TaskList {
  return {
    [FREEZE_SYNC_TASK]: async () => {
      const decision = await loadDecision(pool, policy);
      const changed = await publish(pool, decision);
      // One line per change for the operator's terminal: on (with why), off, or a new reason.
      if (changed) {
        logger.info(
          { frozen: decision.frozen, cause: decision.cause, reason: decision.reason },
          decision.frozen ? `release freeze on: ${decision.reason}` : 'release freeze off'
        );
      }
      // Timed first: a quiet period must end on time even while GitHub is failing this sync.
      const resync = new Date(Date.now() + RESYNC_EVERY_MS);
      const next =
        decision.nextChangeAt && decision.nextChangeAt < resync
          ? new Date(decision.nextChangeAt.getTime() + 1_000)
          : resync;
      await requestFreezeSync(pool, next);
      if (publisher) {
        const result = await publisher.syncAll(decision);
        if (result.updated > 0) {
          await audit(pool, {
            actor: ACTOR,
            action: 'github.freeze_statuses_synced',
            target: 'github',
            payload: { ...result, frozen: decision.frozen },
          });
        }
      }
    },
    [FREEZE_PR_TASK]: async (pullRequest) => {
      if (!publisher) return;
      const decision = await loadDecision(pool, policy);
      await publisher.syncOne(decision, pullRequest);
    },
    [FREEZE_DEPLOYMENT_TASK]: async (p) => {
      if (!publisher) return;
      // The review is answered once per callback URL (one per protection-rule request): recorded with the
      // decision it gave before the audit entry, so a retry after a failed audit does not review again.
      const reviewed = await once(pool, `github:deployment-review:${p.callbackUrl}`, async () => {
        const decision = await loadDecision(pool, policy);
        const verdict = await publisher.reviewDeployment(decision, p.callbackUrl, p.environment);
        return { verdict, reason: decision.reason, cause: decision.cause };
      });
      await audit(pool, {
        actor: ACTOR,
        action: reviewed.verdict === 'approved' ? 'github.deployment_approved' : 'github.deployment_rejected',
        target: `${p.repo}/deployments/${p.deploymentId ?? '?'}`,
        payload: { environment: p.environment, reason: reviewed.reason, cause: reviewed.cause },
      });
    },
  };
}
