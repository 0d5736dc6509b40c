import type { PoolClient } from '../core/db.ts';

/*
 * What a person's press of a page's Acknowledge or Resolve button does to the incident of the page's
 * group (controlroom.incidents). Shared by slack/ (which handles the press, in its transaction) and
 * incidents/ (which owns the timeline), so it sits above both rooms.
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
