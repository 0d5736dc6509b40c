import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { audit } from '../../core/audit.ts';
import type { Pool } from '../../core/db.ts';
import { withTransaction } from '../../core/db.ts';
import { parseInput } from '../../core/http.ts';
import { UserError } from '../../core/errors.ts';
import { enqueueJob } from '../../core/jobs.ts';
import { acknowledgeIncidentOfPage, resolveIncidentOfPage } from '../incident-buttons.ts';
import { ACK_ACTION, RESOLVE_ACTION } from './messages.ts';
import { PAGE_REFRESH_TASK } from './pager.ts';

/**
 * Slack request signing: "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{raw body}" with the app's signing
 * secret; requests older than five minutes are refused so a captured request cannot be replayed.
 */
export function verifySlackSignature(
  rawBody: Buffer,
  secret: string,
  timestamp: string | undefined,
  signature: string | undefined,
  nowMs = Date.now()
): void {
  if (!timestamp || !signature)
    throw new UserError(401, 'missing X-Slack-Request-Timestamp or X-Slack-Signature header');
  const seconds = Number(timestamp);
  if (!Number.isFinite(seconds) || Math.abs(nowMs / 1000 - seconds) > 300)
    throw new UserError(401, 'Slack request timestamp is more than five minutes off');
  const expected = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  if (a.length !== b.length || !timingSafeEqual(a, b))
    throw new UserError(401, 'Slack signature does not match the body');
}

const interaction = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string(), username: z.string().optional(), name: z.string().optional() }),
  actions: z
    .array(z.object({ action_id: z.string(), value: z.string().regex(/^\d{1,18}$/, 'must be a page id') }))
    .min(1),
});

export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
}

/** Applies Acknowledge / Resolve button presses; each takes effect once, is audited, and re-renders the page. */
export async function handleSlackInteraction(
  pool: Pool,
  rawBody: Buffer,
  meta: RequestMeta
): Promise<{ applied: number }> {
  const form = new URLSearchParams(rawBody.toString('utf8'));
  const payloadText = form.get('payload');
  if (!payloadText) throw new UserError(400, 'expected a form field "payload" with the interaction JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(payloadText);
  } catch {
    throw new UserError(400, 'the "payload" field is not valid JSON');
  }
  const { user, actions } = parseInput(interaction, parsed, 'Slack interaction');
  const who = user.username ?? user.name ?? user.id;
  let applied = 0;
  for (const action of actions) {
    if (action.action_id !== ACK_ACTION && action.action_id !== RESOLVE_ACTION) {
      throw new UserError(400, `unknown action ${action.action_id}`);
    }
    const acknowledging = action.action_id === ACK_ACTION;
    applied += await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const updated = acknowledging
        ? await client.query(
            `UPDATE controlroom.slack_pages SET state = 'acknowledged', acked_by = $2, acked_at = now(), updated_at = now()
              WHERE id = $1 AND state = 'firing' RETURNING id`,
            [action.value, `@${who}`]
          )
        : await client.query(
            `UPDATE controlroom.slack_pages SET state = 'resolved', resolved_by = $2, resolved_at = now(), updated_at = now()
              WHERE id = $1 AND state <> 'resolved' RETURNING id`,
            [action.value, `@${who}`]
          );
      if (updated.rowCount === 0) return 0; // already acknowledged / resolved, or no such page
      // The incident's SLA timeline takes the press in the same transaction: recorded once, with the page's time.
      if (acknowledging) await acknowledgeIncidentOfPage(client, action.value, `@${who}`);
      else await resolveIncidentOfPage(client, action.value, `@${who}`);
      await audit(client, {
        actor: `slack:${user.id}`,
        action: acknowledging ? 'slack.page_acknowledged' : 'slack.page_resolved_by_user',
        target: `slack_pages/${action.value}`,
        payload: { slack_user: who },
        ipAddress: meta.ip,
        userAgent: meta.userAgent,
      });
      await enqueueJob(client, PAGE_REFRESH_TASK, {
        pageId: action.value,
        note: acknowledging ? `Acknowledged by @${who}.` : `Resolved by @${who}.`,
      });
      return 1;
    });
  }
  return { applied };
}
