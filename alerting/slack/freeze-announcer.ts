import type { WebClient } from '@slack/web-api';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import type { TaskList } from '../../core/jobs.ts';
import type { Logger } from '../../core/logger.ts';
import type { FreezeCause } from '../freeze-cause.ts';
import { FREEZE_CHANGED_TASK } from '../tasks.ts';
import type { ChannelPacer } from './pacer.ts';

const ACTOR = 'controlroom:release-freeze';

interface HistoryRow {
  id: string;
  frozen: boolean;
  cause: FreezeCause;
  reason: string;
  at: Date;
}

/**
 * The Slack line of one freeze change. The first change of an episode opens the thread; later ones
 * (a stronger cause, an override, a manual freeze on top, the quiet period) and its end reply in it.
 */
export function announcementText(
  change: Pick<HistoryRow, 'frozen' | 'cause' | 'reason'>,
  opensEpisode: boolean
): string {
  if (change.cause === 'none') return ':white_check_mark: Release freeze ended: releases may ship again.';
  if (change.cause === 'override') return `:unlock: Release freeze overridden, releases may ship: ${change.reason}`;
  const what = change.cause === 'manual' ? 'Releases frozen by hand' : `Releases frozen (${change.cause})`;
  return opensEpisode ? `:no_entry: ${what}: ${change.reason}` : `${what} now: ${change.reason}`;
}

/**
 * Announces every change of the release freeze (controlroom.freeze_history) in Slack's P2 channel, once,
 * threaded per freeze episode: an episode runs from the first change away from "none" to the next
 * "none"; its first change is the thread root and everything until (and including) the end replies.
 *
 * Once per change, across retries and restarts: a change's row in controlroom.freeze_announcements is
 * written before the Slack call and its ts right after it, so a retried job that finds the ts posts
 * nothing. The one window left is a crash between Slack accepting the message and that UPDATE (the same
 * as for pages): the message is then posted a second time on retry, never lost. A reply whose root is not
 * posted yet (its job still retrying) posts the root first, so order within a thread holds.
 */
export class FreezeAnnouncer {
  constructor(
    private readonly pool: Pool,
    private readonly slack: WebClient,
    private readonly pacer: ChannelPacer,
    private readonly channel: string,
    private readonly logger: Logger
  ) {}

  async announce(historyId: string): Promise<void> {
    const change = await this.history(historyId);
    if (!change) return;
    const episodeId = await this.episodeOf(change);
    if (episodeId === null) return; // "none" after "none" (or as the very first state): no freeze to end
    if (episodeId === change.id) {
      await this.post(change, episodeId, null);
      return;
    }
    const root = await this.history(episodeId);
    const rootTs = await this.post(root!, episodeId, null);
    await this.post(change, episodeId, rootTs);
  }

  /** The first change of the episode `change` belongs to, or null when it belongs to none. */
  private async episodeOf(change: HistoryRow): Promise<string | null> {
    const { rows } = await this.pool.query<{ root: string | null }>(
      `SELECT min(id)::text AS root FROM controlroom.freeze_history
        WHERE id <= $1 AND cause <> 'none'
          AND id > coalesce((SELECT max(id) FROM controlroom.freeze_history WHERE id < $1 AND cause = 'none'), 0)`,
      [change.id]
    );
    return rows[0]?.root ?? null;
  }

  /** Posts the change unless it already was; returns its ts. */
  private async post(change: HistoryRow, episodeId: string, threadTs: string | null): Promise<string> {
    await this.pool.query(
      `INSERT INTO controlroom.freeze_announcements (history_id, episode_id, channel, thread_ts) VALUES ($1, $2, $3, $4)
       ON CONFLICT (history_id) DO NOTHING`,
      [change.id, episodeId, this.channel, threadTs]
    );
    const { rows } = await this.pool.query<{ ts: string | null; channel: string }>(
      `SELECT ts, channel FROM controlroom.freeze_announcements WHERE history_id = $1`,
      [change.id]
    );
    const existing = rows[0]!;
    if (existing.ts) return existing.ts;
    const text = announcementText(change, threadTs === null);
    const channel = existing.channel;
    const posted = await this.pacer.run(channel, () =>
      this.slack.chat.postMessage({ channel, text, ...(threadTs ? { thread_ts: threadTs } : {}) })
    );
    // Stored at once: a retry after this point finds the message posted.
    await this.pool.query(
      `UPDATE controlroom.freeze_announcements SET ts = $2, channel_id = $3, posted_at = now() WHERE history_id = $1`,
      [change.id, posted.ts, posted.channel]
    );
    await audit(this.pool, {
      actor: ACTOR,
      action: 'slack.freeze_announced',
      target: `freeze_history/${change.id}`,
      payload: { channel, ts: posted.ts, thread_ts: threadTs, cause: change.cause, frozen: change.frozen },
    });
    this.logger.info(
      { historyId: change.id, cause: change.cause, threaded: threadTs !== null },
      'release freeze change announced in Slack'
    );
    return posted.ts!;
  }

  private async history(id: string): Promise<HistoryRow | null> {
    const { rows } = await this.pool.query<HistoryRow>(
      `SELECT id::text AS id, frozen, cause, reason, at FROM controlroom.freeze_history WHERE id = $1`,
      [id]
    );
    return rows[0] ?? null;
  }
}

/** The freeze_changed task: announces the change, or (Slack not configured) completes without a word. */
export function freezeAnnouncementTasks(announcer: FreezeAnnouncer | null, logger: Logger): TaskList {
  return {
    [FREEZE_CHANGED_TASK]: async ({ historyId }) => {
      // Declared as text, but a hand-queued job could carry anything: a bad id fails the job, not a query.
      if (!/^\d+$/.test(historyId))
        throw new Error(`job payload's historyId is not a freeze_history id: ${JSON.stringify(historyId)}`);
      if (!announcer)
        return void logger.debug({ historyId }, 'Slack is not configured: release freeze change not announced');
      await announcer.announce(historyId);
    },
  };
}
