import type { PoolClient } from '../core/db.ts';
import { enqueueJob } from '../core/jobs.ts';
import { PAGE_REFRESH_TASK } from './slack/pager.ts';

/*
 * What a person's press of a page's Acknowledge or Resolve button does to the incident of the page's
 * group (controlroom.incidents), and what the Incidents page's actions in Grafana do to the page. Shared by
 * slack/ (which handles the press, in its transaction) and incidents/ (which owns the timeline and the
 * incident API), so it sits above both rooms.
 */

/**
 * Records a Slack Acknowledge press on the open incident of the page's group, in the press's transaction
 * (the same instant as slack_pages.acked_at). The first acknowledgement stands: a later press, or a press
 * after the incident resolved, changes nothing.
 */
export async function acknowledgeIncidentOfPage(client: PoolClient, pageId: string, by: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE controlroom.incidents i
        SET acknowledged_at = greatest(now(), i.paged_at), acknowledged_by = $2, acknowledged_via = 'slack_button'
       FROM controlroom.slack_pages p
      WHERE p.id = $1 AND i.source = p.source AND i.group_key = p.group_key
        AND i.resolved_at IS NULL AND i.acknowledged_at IS NULL`,
    [pageId, by]
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Records a Slack Resolve press: the person declares the incident over (it also counts as the
 * acknowledgement when none came first). Alerts of the group still firing change nothing after this; the
 * next firing state change opens a new incident, as it opens a new page.
 */
export async function resolveIncidentOfPage(client: PoolClient, pageId: string, by: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE controlroom.incidents i
        SET resolved_at = greatest(now(), i.paged_at), resolved_by = $2, resolved_via = 'slack_resolve',
            acknowledged_by = CASE WHEN i.acknowledged_at IS NULL THEN $2 ELSE i.acknowledged_by END,
            acknowledged_via = coalesce(i.acknowledged_via, 'slack_resolve'),
            acknowledged_at = coalesce(i.acknowledged_at, greatest(now(), i.paged_at))
       FROM controlroom.slack_pages p
      WHERE p.id = $1 AND i.source = p.source AND i.group_key = p.group_key AND i.resolved_at IS NULL`,
    [pageId, by]
  );
  return (rowCount ?? 0) > 0;
}

/**
 * The Incidents page's Acknowledge (Grafana), with the Slack button's effect, in the caller's transaction:
 * the incident records the acknowledgement (via 'grafana', by `actor`), and when the incident is its group's
 * current one, the group's page turns 'acknowledged' exactly as a button press turns it (which is what stops
 * the escalation: the escalation job leaves a page that is no longer 'firing' alone) and a page refresh is
 * queued that re-renders the root and replies `note` in its thread once (the job's id keys the reply).
 * Returns whether anything changed (false: already acknowledged or resolved) and the page it touched.
 */
export async function acknowledgeIncident(
  client: PoolClient,
  incidentId: string,
  actor: string,
  note: string
): Promise<{ changed: boolean; pageId: string | null }> {
  const { rows } = await client.query<{ source: string; group_key: string; newest: boolean }>(
    `UPDATE controlroom.incidents i
        SET acknowledged_at = greatest(now(), i.paged_at), acknowledged_by = $2, acknowledged_via = 'grafana'
      WHERE i.id = $1 AND i.resolved_at IS NULL AND i.acknowledged_at IS NULL
      RETURNING i.source, i.group_key,
                NOT EXISTS (SELECT 1 FROM controlroom.incidents n
                             WHERE n.source = i.source AND n.group_key = i.group_key AND n.id > i.id) AS newest`,
    [incidentId, actor]
  );
  const row = rows[0];
  if (!row) return { changed: false, pageId: null };
  if (!row.newest) return { changed: true, pageId: null };
  const page = await client.query<{ id: string }>(
    `UPDATE controlroom.slack_pages SET state = 'acknowledged', acked_by = $3, acked_at = now(), updated_at = now()
      WHERE source = $1 AND group_key = $2 AND state = 'firing' RETURNING id`,
    [row.source, row.group_key, actor]
  );
  const pageId = page.rows[0]?.id ?? null;
  if (pageId) await enqueueJob(client, PAGE_REFRESH_TASK, { pageId: String(pageId), note });
  return { changed: true, pageId: pageId && String(pageId) };
}

/**
 * Queues `note` as a reply in the Slack thread of the incident's page (in the caller's transaction, so the
 * reply is posted once if and only if what it reports was committed). Only the group's current incident
 * has a thread; an older incident's page started over, so nothing is posted for it. Returns the page id.
 */
export async function queueIncidentThreadNote(
  client: PoolClient,
  incidentId: string,
  note: string
): Promise<string | null> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT p.id FROM controlroom.incidents i
       JOIN controlroom.slack_pages p ON p.source = i.source AND p.group_key = i.group_key
      WHERE i.id = $1
        AND NOT EXISTS (SELECT 1 FROM controlroom.incidents n
                         WHERE n.source = i.source AND n.group_key = i.group_key AND n.id > i.id)`,
    [incidentId]
  );
  const pageId = rows[0] ? String(rows[0].id) : null;
  if (pageId) await enqueueJob(client, PAGE_REFRESH_TASK, { pageId, note });
  return pageId;
}
