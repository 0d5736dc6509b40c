import type { WebClient } from '@slack/web-api';
import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool, type PoolClient } from '../../core/db.ts';
import type { Logger } from '../../core/logger.ts';
import { once, renderedDigest } from '../../core/side-effects.ts';
import { groupSeverity, groupState, markReported, type AlertEventRow } from '../events.ts';
import { enqueueJob, type TaskList } from '../../core/jobs.ts';
import { changesReply, rootMessage, stormMessage } from './messages.ts';
import type { ChannelPacer } from './pacer.ts';

export interface PagerSettings {
  channels: { P1: string; P2: string; P3: string };
  escalationChannel: string;
  escalationDelaySeconds: number;
  /** Roots posted to one channel within a minute before new groups fold into a storm digest. */
  stormThreshold: number;
}

export interface PageRow {
  id: string;
  source: string;
  group_key: string;
  channel: string;
  channel_id: string | null;
  severity: 'P1' | 'P2' | 'P3';
  ts: string | null;
  storm_id: string | null;
  state: 'firing' | 'acknowledged' | 'resolved';
  acked_by: string | null;
  resolved_by: string | null;
  /** sha256 of the root as Slack last showed it (null before the root is posted). */
  rendered: string | null;
  /** When a root post was first attempted for this generation (committed before the post); null before. */
  root_attempted_at: Date | null;
  /** When the page took one of its channel's root slots; null while it has none. */
  root_reserved_at: Date | null;
  /** Reset when a resolved page fires again: with the id, it names this generation of the page. */
  created_at: Date;
}

/** The pager's own queue tasks, queued and handled in slack/ (handlers: `pagerTasks` below). */
export const ESCALATE_TASK = 'slack_escalate';
export const STORM_REFRESH_TASK = 'slack_storm_refresh';
export const PAGE_REFRESH_TASK = 'slack_page_refresh';

declare global {
  namespace GraphileWorker {
    interface Tasks {
      /** Escalate a P1 page nobody acknowledged in time (keyed per page). */
      slack_escalate: { pageId: string };
      /** Redraw a storm digest (keyed per storm, run at most every couple of seconds). */
      slack_storm_refresh: { stormId: string };
      /** Redraw a page after a button press, with the note saying who pressed it. */
      slack_page_refresh: { pageId: string; note?: string | null };
    }
  }
}
const ACTOR = 'controlroom:receiver';
const STORM_REFRESH_DELAY_MS = 2_000;
/** Slack message metadata event type of a page root: with the page id and generation, it finds a root posted but not recorded. */
export const ROOT_EVENT_TYPE = 'controlroom_page_root';
/** The same for a storm digest, with the storm id. */
export const STORM_EVENT_TYPE = 'controlroom_storm_digest';
/** How far before the intent the history lookup starts (clock skew between Postgres and Slack). */
const POST_LOOKUP_MARGIN_SECONDS = 120;
/** History pages (of 200 messages) read looking for a post; a busier channel fails the job rather than post blind. */
const POST_LOOKUP_MAX_PAGES = 10;
/** conversations.list pages (of 200 channels) read to resolve a channel name to its id. */
const CHANNEL_LOOKUP_MAX_PAGES = 20;

/**
 * Pages in Slack: one root message per alert group in the channel of its severity, later changes as
 * thread replies plus a chat.update of the root, buttons to acknowledge or resolve, escalation of a P1
 * nobody acknowledged. When a channel is flooded, new groups fold into one storm digest message.
 *
 * Every Slack call is one step of a job that the queue may retry, and each step is recorded in Postgres
 * as soon as Slack accepted it, before the next step: the root's ts, the alert changes a message showed
 * (alert_events.reported_at), what the root or digest last showed (`rendered`), and the escalation posts
 * and button notes (controlroom.side_effects). A retry therefore repeats only the step that failed.
 * Roots and storm digests also survive a crash between Slack's answer and their record: an intent is
 * committed before the post and the post carries message metadata, so the retry adopts it from the
 * channel's history instead of posting again (postRoot). Replies and notes keep `once`'s window.
 */
export class SlackPager {
  constructor(
    private readonly pool: Pool,
    private readonly slack: WebClient,
    private readonly pacer: ChannelPacer,
    private readonly settings: PagerSettings,
    private readonly logger: Logger
  ) {}

  async publish(source: string, groupKey: string, changes: readonly AlertEventRow[]): Promise<void> {
    const alerts = await groupState(this.pool, source, groupKey);
    const anyFiring = alerts.some((a) => a.status === 'firing');
    let page = await this.page(source, groupKey);
    if (!page || (page.state === 'resolved' && changes.some((c) => c.status === 'firing'))) {
      if (!anyFiring) return; // resolved before it was ever paged: nothing to tell anyone
      page = await this.openPage(source, groupKey, groupSeverity(alerts), page);
    }
    if (page.storm_id) {
      await this.markResolvedIfQuiet(page, anyFiring);
      await this.scheduleStormRefresh(page.storm_id);
      return;
    }
    if (!page.ts) {
      if ((await this.takeRootSlotOrFold(page)) === 'folded') return;
      return this.postRoot(page, alerts, changes);
    }
    // Changes an earlier attempt already showed in a reply are not shown again.
    const unreported = changes.filter((c) => !c.reported_at);
    const reply = changesReply(unreported);
    const open = page;
    if (reply) {
      await this.pacer.run(open.channel, () =>
        this.slack.chat.postMessage({ channel: open.channel_id ?? open.channel, thread_ts: open.ts!, text: reply })
      );
      await markReported(
        this.pool,
        unreported.map((c) => c.id)
      );
    }
    page = await this.markResolvedIfQuiet(open, anyFiring);
    await this.updateRoot(page, alerts);
    await audit(this.pool, {
      actor: ACTOR,
      action: 'slack.page_updated',
      target: `slack_pages/${page.id}`,
      payload: {
        channel: page.channel,
        ts: page.ts,
        changes: changes.length,
        firing: alerts.filter((a) => a.status === 'firing').length,
      },
    });
  }

  /**
   * Re-renders a page's root after a button press (acknowledged or resolved by a person), then posts the
   * note in its thread. `requestId` names the press (its queue job), so a retry posts the note once.
   */
  async refreshPage(pageId: string, note: string | null, requestId: string): Promise<void> {
    const page = await this.pageById(pageId);
    if (!page?.ts) return;
    const alerts = await groupState(this.pool, page.source, page.group_key);
    await this.updateRoot(page, alerts);
    if (note) {
      await once(this.pool, `slack:page-note:${requestId}`, async () => {
        const posted = await this.pacer.run(page.channel, () =>
          this.slack.chat.postMessage({ channel: page.channel_id ?? page.channel, thread_ts: page.ts!, text: note })
        );
        return { ts: posted.ts ?? null };
      });
    }
  }

  /** Escalates a P1 still unacknowledged after the delay; a page acknowledged or resolved meanwhile is left alone. */
  async escalate(pageId: string): Promise<void> {
    const page = await this.pageById(pageId);
    if (!page?.ts || page.state !== 'firing') return;
    const { rows } = await this.pool.query<{ escalated_at: Date | null }>(
      `SELECT escalated_at FROM controlroom.slack_pages WHERE id = $1`,
      [pageId]
    );
    if (rows[0]?.escalated_at) return;
    const alerts = await groupState(this.pool, page.source, page.group_key);
    const { text } = rootMessage(this.view(page, alerts));
    const minutes = Math.round(this.settings.escalationDelaySeconds / 60);
    const channel = this.settings.escalationChannel;
    const generation = pageGeneration(page);
    await once(this.pool, `slack:escalation:${generation}`, async () => {
      const posted = await this.pacer.run(channel, () =>
        this.slack.chat.postMessage({
          channel,
          text: `<!here> ${page.severity} page unacknowledged for ${minutes} min in ${page.channel}: ${text}`,
        })
      );
      return { ts: posted.ts ?? null };
    });
    await once(this.pool, `slack:escalation-note:${generation}`, async () => {
      const posted = await this.pacer.run(page.channel, () =>
        this.slack.chat.postMessage({
          channel: page.channel_id ?? page.channel,
          thread_ts: page.ts!,
          text: `Escalated to ${channel}: nobody acknowledged within ${minutes} min.`,
        })
      );
      return { ts: posted.ts ?? null };
    });
    await withTransaction(this.pool, 'READ COMMITTED', async (client) => {
      await client.query(`UPDATE controlroom.slack_pages SET escalated_at = now(), updated_at = now() WHERE id = $1`, [
        pageId,
      ]);
      await audit(client, {
        actor: ACTOR,
        action: 'slack.page_escalated',
        target: `slack_pages/${pageId}`,
        payload: { channel, after_minutes: minutes },
      });
    });
  }

  /** Posts or updates a storm digest; closes the storm when none of its groups fires any more. */
  async refreshStorm(stormId: string): Promise<void> {
    const storm = await this.pool.query<{
      channel: string;
      channel_id: string | null;
      ts: string | null;
      closed_at: Date | null;
      rendered: string | null;
      post_attempted_at: Date | null;
    }>(
      `SELECT channel, channel_id, ts, closed_at, rendered, post_attempted_at FROM controlroom.slack_storms WHERE id = $1`,
      [stormId]
    );
    const row = storm.rows[0];
    if (!row) return;
    const { rows } = await this.pool.query<{
      page_id: string;
      alertname: string;
      severity: string | null;
      status: string;
    }>(
      `SELECT p.id AS page_id, e.alertname, e.severity, e.status
         FROM controlroom.slack_pages p
         JOIN LATERAL (SELECT DISTINCT ON (fingerprint) alertname, severity, status
                         FROM controlroom.alert_events
                        WHERE source = p.source AND group_key = p.group_key
                        ORDER BY fingerprint, id DESC) e ON true
        WHERE p.storm_id = $1`,
      [stormId]
    );
    const groups = new Set(rows.map((r) => r.page_id));
    const firingGroups = new Set(rows.filter((r) => r.status === 'firing').map((r) => r.page_id));
    const top = new Map<string, { alertname: string; severity: string; firing: number }>();
    for (const r of rows.filter((x) => x.status === 'firing')) {
      const key = `${r.severity}/${r.alertname}`;
      const entry = top.get(key) ?? { alertname: r.alertname, severity: r.severity ?? 'P3', firing: 0 };
      entry.firing++;
      top.set(key, entry);
    }
    const closed = firingGroups.size === 0;
    const message = stormMessage({
      channel: row.channel,
      groups: groups.size,
      firingGroups: firingGroups.size,
      alerts: rows.filter((r) => r.status === 'firing').length,
      top: [...top.values()].sort((a, b) => a.severity.localeCompare(b.severity) || b.firing - a.firing).slice(0, 15),
      closed,
    });
    const rendered = renderedDigest(message);
    let { ts, channel_id: channelId, rendered: shown } = row;
    if (!ts && row.post_attempted_at) {
      // An earlier attempt may have posted the digest and died before recording it: adopt it if Slack has it.
      channelId ??= await this.channelIdFor(row.channel);
      const found =
        channelId &&
        (await this.findPosted(row.channel, channelId, row.post_attempted_at, STORM_EVENT_TYPE, { storm_id: stormId }));
      if (found) {
        await this.recordStorm(stormId, row.channel, groups.size, { ts: found, channel: channelId!, rendered: null });
        this.logger.warn({ stormId, ts: found }, 'storm digest found posted but unrecorded: adopted');
        [ts, shown] = [found, null];
      }
    }
    if (!ts) {
      // Committed before Slack is asked: from here on a retry looks before it posts. Moved on by each
      // attempt: a lookup that found nothing cleared every earlier attempt, so the next looks back only to this one.
      await this.pool.query(`UPDATE controlroom.slack_storms SET post_attempted_at = clock_timestamp() WHERE id = $1`, [
        stormId,
      ]);
      const posted = await this.pacer.run(row.channel, () =>
        this.slack.chat.postMessage({
          channel: row.channel,
          ...message,
          metadata: { event_type: STORM_EVENT_TYPE, event_payload: { storm_id: stormId } },
        })
      );
      await this.recordStorm(stormId, row.channel, groups.size, {
        ts: posted.ts!,
        channel: posted.channel!,
        rendered,
      });
    } else if (shown !== rendered) {
      const [digestTs, digestChannel] = [ts, channelId ?? row.channel];
      await this.pacer.run(row.channel, async () => {
        await this.slack.chat.update({ channel: digestChannel, ts: digestTs, ...message });
        await this.pool.query(`UPDATE controlroom.slack_storms SET rendered = $2 WHERE id = $1`, [stormId, rendered]);
      });
    }
    if (closed && !row.closed_at) {
      await withTransaction(this.pool, 'READ COMMITTED', async (client) => {
        await client.query(`UPDATE controlroom.slack_storms SET closed_at = now() WHERE id = $1`, [stormId]);
        await audit(client, {
          actor: ACTOR,
          action: 'slack.storm_closed',
          target: `slack_storms/${stormId}`,
          payload: { groups: groups.size },
        });
      });
    }
  }

  /** Stored at once, with what it shows: a retry after this point updates this digest instead of posting another. */
  private async recordStorm(
    stormId: string,
    channel: string,
    groups: number,
    digest: { ts: string; channel: string; rendered: string | null }
  ): Promise<void> {
    await withTransaction(this.pool, 'READ COMMITTED', async (client) => {
      await client.query(`UPDATE controlroom.slack_storms SET ts = $2, channel_id = $3, rendered = $4 WHERE id = $1`, [
        stormId,
        digest.ts,
        digest.channel,
        digest.rendered,
      ]);
      await audit(client, {
        actor: ACTOR,
        action: 'slack.storm_opened',
        target: `slack_storms/${stormId}`,
        payload: { channel, groups, ...(digest.rendered === null ? { adopted: true } : {}) },
      });
    });
  }

  /**
   * Posts the page's root once, even across a crash between Slack's answer and its record: the intent
   * (root_attempted_at) is committed before the post, and the root carries Slack message metadata naming
   * the page and its generation. A retry that finds the intent but no ts looks for that message in the
   * channel's history and adopts it (then redraws it like any update) rather than posting a second root.
   * If the lookup itself fails the job fails and is retried: it never posts without knowing.
   */
  private async postRoot(
    page: PageRow,
    alerts: readonly AlertEventRow[],
    changes: readonly AlertEventRow[]
  ): Promise<void> {
    const {
      rows: [intent],
    } = await this.pool.query<{ root_attempted_at: Date | null; channel_id: string | null }>(
      `SELECT root_attempted_at, channel_id FROM controlroom.slack_pages WHERE id = $1`,
      [page.id]
    );
    if (intent?.root_attempted_at) {
      const channelId = intent.channel_id ?? (await this.channelIdFor(page.channel));
      if (channelId && !intent.channel_id)
        await this.pool.query(`UPDATE controlroom.slack_pages SET channel_id = $2 WHERE id = $1`, [page.id, channelId]);
      const found =
        channelId &&
        (await this.findPosted(page.channel, channelId, intent.root_attempted_at, ROOT_EVENT_TYPE, {
          page_id: page.id,
          generation: new Date(page.created_at).toISOString(),
        }));
      if (found) {
        await this.recordRoot(page, alerts, changes, { ts: found, channel: channelId, rendered: null, adopted: true });
        this.logger.warn({ pageId: page.id, ts: found }, 'page root found posted but unrecorded: adopted');
        const adopted = await this.pageById(page.id);
        if (adopted) await this.updateRoot(adopted, alerts);
        return;
      }
    }
    // Committed before Slack is asked: from here on a retry looks before it posts. Moved on by each
    // attempt: a lookup that found nothing cleared every earlier attempt, so the next looks back only to
    // this one (a long Slack outage does not grow the history to read).
    await this.pool.query(`UPDATE controlroom.slack_pages SET root_attempted_at = clock_timestamp() WHERE id = $1`, [
      page.id,
    ]);
    const message = rootMessage(this.view(page, alerts));
    const posted = await this.pacer.run(page.channel, () =>
      this.slack.chat.postMessage({
        channel: page.channel,
        ...message,
        metadata: {
          event_type: ROOT_EVENT_TYPE,
          event_payload: { page_id: page.id, generation: new Date(page.created_at).toISOString() },
        },
      })
    );
    await this.recordRoot(page, alerts, changes, {
      ts: posted.ts!,
      channel: posted.channel!,
      rendered: renderedDigest(message),
      adopted: false,
    });
  }

  /**
   * Stored at once, in one transaction with what it showed: a retry after this point updates this root
   * instead of paging again, and does not repeat the changes it showed as a thread reply. An adopted root
   * is recorded with `rendered` null, so the update that follows redraws it with the current state.
   */
  private async recordRoot(
    page: PageRow,
    alerts: readonly AlertEventRow[],
    changes: readonly AlertEventRow[],
    root: { ts: string; channel: string; rendered: string | null; adopted: boolean }
  ): Promise<void> {
    await withTransaction(this.pool, 'READ COMMITTED', async (client) => {
      await client.query(
        `UPDATE controlroom.slack_pages SET ts = $2, channel_id = $3, rendered = $4, updated_at = now() WHERE id = $1`,
        [page.id, root.ts, root.channel, root.rendered]
      );
      await markReported(
        client,
        changes.map((c) => c.id)
      );
      if (page.severity === 'P1') {
        await enqueueJob(
          client,
          ESCALATE_TASK,
          { pageId: page.id },
          {
            jobKey: `${ESCALATE_TASK}:${page.id}`,
            runAt: new Date(Date.now() + this.settings.escalationDelaySeconds * 1000),
          }
        );
      }
      await audit(client, {
        actor: ACTOR,
        action: 'slack.page_posted',
        target: `slack_pages/${page.id}`,
        payload: {
          channel: page.channel,
          ts: root.ts,
          severity: page.severity,
          group_key: page.group_key,
          alerts: alerts.length,
          ...(root.adopted ? { adopted: true } : {}),
        },
      });
    });
  }

  /**
   * A history or channel lookup Slack refuses for good (the bot token lacks `channels:history` /
   * `channels:read` or their `groups:` twins, or is not in the channel) answers null, so the caller posts:
   * a page that never reaches on-call is worse than the rare second root the lookup guards against, and
   * retrying cannot grant a scope. Logged at error level, naming the scope, on every such post. Transient
   * errors (5xx, rate limits, network) still throw, so the job retries rather than posts blind.
   */
  private async unlessRefused<T>(channel: string, lookup: () => Promise<T>): Promise<T | null> {
    try {
      return await lookup();
    } catch (error) {
      const refusal = (error as { code?: string; data?: { error?: string; needed?: string } }).data;
      const permanent = ['missing_scope', 'not_in_channel', 'channel_not_found', 'not_allowed_token_type'];
      if (
        (error as { code?: string }).code !== 'slack_webapi_platform_error' ||
        !permanent.includes(refusal?.error ?? '')
      )
        throw error;
      this.logger.error(
        { channel, slackError: refusal?.error, needed: refusal?.needed },
        'cannot read the Slack channel to check for an unrecorded post; posting without the check (grant the scope to close this)'
      );
      return null;
    }
  }

  /**
   * The ts of a message an earlier attempt posted to `channel` (id `channelId`) with this metadata, if
   * Slack has it: the channel's history from a little before the intent, bounded. Slack errors propagate
   * (the job retries); a channel too busy to read to the end within the bound fails rather than posts blind.
   */
  private async findPosted(
    channel: string,
    channelId: string,
    attemptedAt: Date,
    eventType: string,
    payload: Record<string, string>
  ): Promise<string | null> {
    const oldest = (attemptedAt.getTime() / 1000 - POST_LOOKUP_MARGIN_SECONDS).toFixed(6);
    let cursor: string | undefined;
    for (let pageNo = 0; pageNo < POST_LOOKUP_MAX_PAGES; pageNo++) {
      const history = await this.unlessRefused(channel, () =>
        this.slack.conversations.history({
          channel: channelId,
          oldest,
          limit: 200,
          include_all_metadata: true,
          ...(cursor ? { cursor } : {}),
        })
      );
      if (!history) return null;
      for (const m of history.messages ?? []) {
        const shown = (m.metadata?.event_payload ?? {}) as Record<string, unknown>;
        if (m.ts && m.metadata?.event_type === eventType && Object.entries(payload).every(([k, v]) => shown[k] === v))
          return m.ts;
      }
      cursor = history.response_metadata?.next_cursor || undefined;
      if (!history.has_more || !cursor) return null;
    }
    throw new Error(
      `${eventType} ${JSON.stringify(payload)}: the lookup in ${channel} read ${POST_LOOKUP_MAX_PAGES} history pages without reaching the end; not posting blind`
    );
  }

  /**
   * The channel id conversations.history needs: the channel itself when it is an id, else one learned
   * from a page or storm digest posted there, else resolved by name with conversations.list (bounded;
   * past the bound the job fails). Null when no channel has that name, so nothing was ever posted there.
   */
  private async channelIdFor(channel: string): Promise<string | null> {
    if (/^[CGD][A-Z0-9]+$/.test(channel)) return channel;
    const { rows } = await this.pool.query<{ channel_id: string }>(
      `(SELECT channel_id FROM controlroom.slack_pages WHERE channel = $1 AND channel_id IS NOT NULL LIMIT 1)
       UNION ALL
       (SELECT channel_id FROM controlroom.slack_storms WHERE channel = $1 AND channel_id IS NOT NULL LIMIT 1)
       LIMIT 1`,
      [channel]
    );
    if (rows[0]) return rows[0].channel_id;
    const name = channel.replace(/^#/, '');
    let cursor: string | undefined;
    for (let pageNo = 0; pageNo < CHANNEL_LOOKUP_MAX_PAGES; pageNo++) {
      const list = await this.unlessRefused(channel, () =>
        this.slack.conversations.list({
          limit: 200,
          exclude_archived: true,
          types: 'public_channel,private_channel',
          ...(cursor ? { cursor } : {}),
        })
      );
      if (!list) return null;
      const id = list.channels?.find((c) => c.name === name)?.id;
      if (id) return id;
      cursor = list.response_metadata?.next_cursor || undefined;
      if (!cursor) return null;
    }
    throw new Error(`channel ${channel}: not found in ${CHANNEL_LOOKUP_MAX_PAGES} conversations.list pages`);
  }

  /** Updates the root when it would show something new; what it shows is recorded once Slack accepted it. */
  private async updateRoot(page: PageRow, alerts: readonly AlertEventRow[]): Promise<void> {
    const message = rootMessage(this.view(page, alerts));
    const rendered = renderedDigest(message);
    if (page.rendered === rendered) return;
    // Compared and recorded inside the pacer's turn for the channel: no other update of this root (a
    // button refresh racing a group job) can land between the check, Slack's answer and the record, so
    // `rendered` is always what Slack shows.
    await this.pacer.run(page.channel, async () => {
      const { rows } = await this.pool.query<{ rendered: string | null }>(
        `SELECT rendered FROM controlroom.slack_pages WHERE id = $1`,
        [page.id]
      );
      if (rows[0]?.rendered === rendered) return;
      await this.slack.chat.update({ channel: page.channel_id ?? page.channel, ts: page.ts!, ...message });
      await this.pool.query(`UPDATE controlroom.slack_pages SET rendered = $2 WHERE id = $1`, [page.id, rendered]);
    });
  }

  private view(page: PageRow, alerts: readonly AlertEventRow[]) {
    return {
      pageId: page.id,
      severity: page.severity,
      state: page.state,
      ackedBy: page.acked_by,
      resolvedBy: page.resolved_by,
      alerts,
    };
  }

  /**
   * Gives the page one of its channel's root slots, or folds it into the channel's storm digest. At most
   * ALERT_STORM_THRESHOLD pages take a slot per channel per minute, exactly, however many workers run:
   * the count and the reservation happen under one per-channel lock. A page keeps its slot across
   * retries, so a root whose post failed is posted by the retry, not folded.
   */
  private async takeRootSlotOrFold(page: PageRow): Promise<'root' | 'folded'> {
    const stormId = await withTransaction(this.pool, 'READ COMMITTED', async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`slack-channel:${page.channel}`]);
      const { rows } = await client.query<{ root_reserved_at: Date | null; storm_id: string | null }>(
        `SELECT root_reserved_at, storm_id FROM controlroom.slack_pages WHERE id = $1 FOR UPDATE`,
        [page.id]
      );
      if (rows[0]?.root_reserved_at) return null;
      if (rows[0]?.storm_id) return rows[0].storm_id;
      const {
        rows: [load],
      } = await client.query<{ open: boolean; recent: string }>(
        `SELECT EXISTS (SELECT 1 FROM controlroom.slack_storms WHERE channel = $1 AND closed_at IS NULL) AS open,
                (SELECT count(*) FROM controlroom.slack_pages
                  WHERE channel = $1 AND root_reserved_at > clock_timestamp() - interval '1 minute') AS recent`,
        [page.channel]
      );
      if (!load!.open && Number(load!.recent) < this.settings.stormThreshold) {
        await client.query(`UPDATE controlroom.slack_pages SET root_reserved_at = clock_timestamp() WHERE id = $1`, [
          page.id,
        ]);
        return null;
      }
      return this.joinStorm(client, page);
    });
    return stormId === null ? 'root' : 'folded';
  }

  private async joinStorm(client: PoolClient, page: PageRow): Promise<string> {
    await client.query(
      `INSERT INTO controlroom.slack_storms (channel) VALUES ($1) ON CONFLICT (channel) WHERE closed_at IS NULL DO NOTHING`,
      [page.channel]
    );
    const { rows } = await client.query<{ id: string }>(
      `UPDATE controlroom.slack_pages SET storm_id = (SELECT id FROM controlroom.slack_storms WHERE channel = $2 AND closed_at IS NULL),
              updated_at = now()
        WHERE id = $1 RETURNING storm_id AS id`,
      [page.id, page.channel]
    );
    const stormId = rows[0]!.id;
    await audit(client, {
      actor: ACTOR,
      action: 'slack.page_folded_into_storm',
      target: `slack_pages/${page.id}`,
      payload: { storm_id: stormId, channel: page.channel },
    });
    await this.scheduleStormRefresh(stormId, client);
    return stormId;
  }

  private scheduleStormRefresh(stormId: string, db: Pool | PoolClient = this.pool): Promise<void> {
    // preserve_run_at: a flood of members refreshes the digest every couple of seconds, not once per member.
    return enqueueJob(
      db,
      STORM_REFRESH_TASK,
      { stormId },
      {
        jobKey: `${STORM_REFRESH_TASK}:${stormId}`,
        jobKeyMode: 'preserve_run_at',
        runAt: new Date(Date.now() + STORM_REFRESH_DELAY_MS),
        // One refresh at a time per storm, so two cannot both find no digest yet and post one each.
        queueName: `${STORM_REFRESH_TASK}:${stormId}`,
      }
    );
  }

  private async markResolvedIfQuiet(page: PageRow, anyFiring: boolean): Promise<PageRow> {
    if (anyFiring || page.state === 'resolved') return page;
    await this.pool.query(
      `UPDATE controlroom.slack_pages SET state = 'resolved', resolved_at = now(), updated_at = now() WHERE id = $1`,
      [page.id]
    );
    return { ...page, state: 'resolved' };
  }

  private async openPage(
    source: string,
    groupKey: string,
    severity: PageRow['severity'],
    previous: PageRow | null
  ): Promise<PageRow> {
    const channel = this.settings.channels[severity];
    const { rows } = await this.pool.query<PageRow>(
      `INSERT INTO controlroom.slack_pages (source, group_key, channel, severity)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (source, group_key) DO UPDATE
         SET channel = EXCLUDED.channel, severity = EXCLUDED.severity, channel_id = NULL, ts = NULL, storm_id = NULL,
             rendered = NULL, root_reserved_at = NULL, root_attempted_at = NULL,
             state = 'firing', acked_by = NULL, acked_at = NULL, resolved_by = NULL, resolved_at = NULL,
             escalated_at = NULL, created_at = now(), updated_at = now()
         -- Only a resolved page starts over; a live one (posted by an earlier job) is kept as it is.
         WHERE controlroom.slack_pages.state = 'resolved'
       RETURNING *`,
      [source, groupKey, channel, severity]
    );
    if (previous) this.logger.info({ groupKey }, 'alert group fired again after resolving: new page');
    return rows[0] ?? (await this.page(source, groupKey))!;
  }

  private async page(source: string, groupKey: string): Promise<PageRow | null> {
    const { rows } = await this.pool.query<PageRow>(
      `SELECT * FROM controlroom.slack_pages WHERE source = $1 AND group_key = $2`,
      [source, groupKey]
    );
    return rows[0] ?? null;
  }

  private async pageById(id: string): Promise<PageRow | null> {
    const { rows } = await this.pool.query<PageRow>(`SELECT * FROM controlroom.slack_pages WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }
}

/** A page that resolved and fires again starts over under the same id: its creation time tells the two apart. */
const pageGeneration = (page: PageRow) => `${page.id}@${new Date(page.created_at).getTime()}`;

/**
 * The pager's tasks. Without Slack (no bot token) they complete doing nothing: the pages they would
 * redraw were never posted.
 */
export function pagerTasks(pager: SlackPager | null): TaskList {
  return {
    [ESCALATE_TASK]: async ({ pageId }) => pager?.escalate(pageId),
    [STORM_REFRESH_TASK]: async ({ stormId }) => pager?.refreshStorm(stormId),
    [PAGE_REFRESH_TASK]: async ({ pageId, note }, helpers) => {
      // Each button press queues its own (unkeyed) job: its id names the press across retries.
      await pager?.refreshPage(pageId, note ?? null, `job:${helpers.job.id}`);
    },
  };
}
