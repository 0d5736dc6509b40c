import { createHash } from 'node:crypto';
import { SILENCE_MAX_MINUTES, type IncidentSilenceBody } from '@controlroom/contract';
import { withTransaction, type Pool } from '../../core/db.ts';
import { audit } from '../../core/audit.ts';
import { UserError } from '../../core/errors.ts';
import { queueIncidentThreadNote } from '../incident-buttons.ts';

/*
 * "Silence for…" on the Incidents page: an Alertmanager v2 silence for the incident's group, created once.
 *
 * Exactly once, across retries, concurrent double submits and a crash between Alertmanager's answer and our
 * commit:
 * 1. a row is committed first (pending, silence_id NULL) with the expiry fixed, keyed by the request;
 * 2. under that row's lock, a stored silence id is returned as is; otherwise Alertmanager is searched for a
 *    silence an earlier attempt of this row made (same matchers, createdBy, comment and endsAt) and that is
 *    adopted, and only when there is none is a silence created;
 * 3. the id, the audit entry and the Slack thread reply are committed together, so the reply is queued once.
 * Alertmanager unreachable or refusing: 503/502, the row stays pending (never shown, never audited) and the
 * next attempt of the same request resumes it.
 */

/** Alertmanager's answer must come within this, or the request is a 503 (nothing is recorded as done). */
const ALERTMANAGER_TIMEOUT_MS = 5_000;

export interface AlertmanagerSilence {
  id: string;
  matchers: Array<{ name: string; value: string; isRegex: boolean; isEqual?: boolean }>;
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: 'active' | 'pending' | 'expired' };
}

/** The few Alertmanager v2 calls the Incidents page needs, with errors a user can act on. */
export class AlertmanagerClient {
  constructor(readonly baseUrl: string) {}

  private async call(path: string, init: RequestInit = {}): Promise<unknown> {
    const url = new URL(path, this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`);
    let res: Response;
    try {
      res = await fetch(url, {
        ...init,
        headers: { 'content-type': 'application/json', ...init.headers },
        signal: AbortSignal.timeout(ALERTMANAGER_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      throw new UserError(
        503,
        `Alertmanager at ${this.baseUrl} did not answer (${cause}); nothing was silenced, try again when it is up`
      );
    }
    const text = await res.text();
    if (!res.ok)
      throw new UserError(
        502,
        `Alertmanager at ${this.baseUrl} refused the silence (HTTP ${res.status}: ${text.trim().slice(0, 300)}); nothing was silenced`
      );
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UserError(
        502,
        `Alertmanager at ${this.baseUrl} answered something that is not JSON; nothing was silenced`
      );
    }
  }

  /** Every silence (active, pending and expired) whose matchers include all of `labels` as equality matchers. */
  async silencesMatching(labels: Record<string, string>): Promise<AlertmanagerSilence[]> {
    const filter = Object.entries(labels)
      .map(([name, value]) => `filter=${encodeURIComponent(`${name}=${JSON.stringify(value)}`)}`)
      .join('&');
    return (await this.call(`api/v2/silences?${filter}`)) as AlertmanagerSilence[];
  }

  async createSilence(silence: Omit<AlertmanagerSilence, 'id' | 'status'>): Promise<string> {
    const body = (await this.call('api/v2/silences', { method: 'POST', body: JSON.stringify(silence) })) as {
      silenceID?: string;
    };
    if (!body.silenceID) throw new UserError(502, `Alertmanager at ${this.baseUrl} answered without a silenceID`);
    return body.silenceID;
  }
}

export interface SilenceRow {
  id: string;
  incident_id: string;
  matchers: Record<string, string>;
  starts_at: Date;
  ends_at: Date;
  reason: string;
  created_by: string;
  silence_id: string | null;
}

/**
 * The matchers of an incident's silence: its group's common labels, i.e. the commonLabels of the group's
 * latest Alertmanager notification (every alert of the group carries them; alertname is among them when
 * the group is one alert name). Refused (409) for a Grafana-alerting incident, which our Alertmanager does
 * not route, and for a group without common labels (a silence with no matchers would silence everything).
 */
async function groupMatchers(pool: Pool, incidentId: string): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ source: string; common: Record<string, string> | null }>(
    `SELECT i.source,
            (SELECT n.payload->'commonLabels' FROM controlroom.alert_notifications n
              WHERE n.source = i.source AND n.group_key = i.group_key ORDER BY n.id DESC LIMIT 1) AS common
       FROM controlroom.incidents i WHERE i.id = $1`,
    [incidentId]
  );
  const row = rows[0];
  if (!row) throw new UserError(404, `no incident ${incidentId}`);
  if (row.source !== 'alertmanager')
    throw new UserError(
      409,
      `incident ${incidentId} came from Grafana alerting: silence it in Grafana (Alerting › Silences)`
    );
  const common = Object.fromEntries(
    Object.entries(row.common ?? {}).filter(([, v]) => typeof v === 'string' && v !== '')
  );
  if (Object.keys(common).length === 0)
    throw new UserError(409, `incident ${incidentId}'s alerts share no label, so no silence can target only them`);
  return common;
}

/** A stable key for "the same request" when the caller sent no Idempotency-Key. */
function requestDigest(incidentId: string, actor: string, body: IncidentSilenceBody): string {
  const when = body.durationMinutes !== undefined ? `d:${body.durationMinutes}` : `e:${Date.parse(body.endsAt!)}`;
  return `digest:${createHash('sha256')
    .update(JSON.stringify([incidentId, actor, body.reason, when]))
    .digest('hex')}`;
}

const sameMatchers = (silence: AlertmanagerSilence, labels: Record<string, string>) =>
  silence.matchers.length === Object.keys(labels).length &&
  silence.matchers.every((m) => !m.isRegex && m.isEqual !== false && labels[m.name] === m.value);

export interface SilenceRequest {
  incidentId: string;
  actor: string;
  role: string;
  idempotencyKey: string | null;
  body: IncidentSilenceBody;
  ipAddress: string | null;
  userAgent: string | null;
}

/**
 * Creates (or, for a repeat of the same request, returns) the incident's silence; see the file comment.
 * `changed` is false when the silence already existed. Bad input is a 4xx before anything is written.
 */
export async function silenceIncident(
  pool: Pool,
  alertmanager: AlertmanagerClient | null,
  request: SilenceRequest
): Promise<{ changed: boolean; silence: SilenceRow }> {
  const { incidentId, actor, body } = request;
  const matchers = await groupMatchers(pool, incidentId);
  const now = Date.now();
  const endsAt = body.durationMinutes !== undefined ? now + body.durationMinutes * 60_000 : Date.parse(body.endsAt!);
  if (body.endsAt !== undefined) {
    if (endsAt <= now) throw new UserError(400, `invalid request body: endsAt ${body.endsAt} is not in the future`);
    // Checked here rather than in the contract: "now" is the server's clock.
    if (endsAt > now + SILENCE_MAX_MINUTES * 60_000)
      throw new UserError(
        400,
        `invalid request body: endsAt must be at most ${SILENCE_MAX_MINUTES / 60 / 24} days ahead`
      );
  }
  if (!alertmanager)
    throw new UserError(
      503,
      'ALERTMANAGER_URL is not set, so Control Room cannot create silences; nothing was silenced'
    );
  const requestKey = request.idempotencyKey ? `key:${request.idempotencyKey}` : requestDigest(incidentId, actor, body);

  // 1. The pending row, with its expiry fixed by the first attempt. An expired one frees its key.
  const rowId = await withTransaction(pool, 'READ COMMITTED', async (client) => {
    await client.query(
      `UPDATE controlroom.incident_silences SET request_key = NULL
        WHERE incident_id = $1 AND request_key = $2 AND ends_at <= now()`,
      [incidentId, requestKey]
    );
    const { rows } = await client.query<{ id: string; reason: string }>(
      `INSERT INTO controlroom.incident_silences (incident_id, request_key, matchers, starts_at, ends_at, reason, created_by)
       VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), to_timestamp($5 / 1000.0), $6, $7)
       ON CONFLICT (incident_id, request_key) DO UPDATE SET request_key = EXCLUDED.request_key
       RETURNING id, reason`,
      [incidentId, requestKey, JSON.stringify(matchers), now, endsAt, body.reason, actor]
    );
    if (rows[0]!.reason !== body.reason)
      throw new UserError(422, 'this Idempotency-Key was already used for a silence with another reason');
    return String(rows[0]!.id);
  });

  // 2 and 3, under the row's lock (a concurrent double submit waits here, then finds the id).
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    const { rows } = await client.query<SilenceRow>(
      `SELECT * FROM controlroom.incident_silences WHERE id = $1 FOR UPDATE`,
      [rowId]
    );
    const row = rows[0]!;
    if (row.silence_id) return { changed: false, silence: row };
    const silence = {
      matchers: Object.entries(row.matchers).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true })),
      startsAt: new Date(row.starts_at).toISOString(),
      endsAt: new Date(row.ends_at).toISOString(),
      createdBy: row.created_by,
      comment: row.reason,
    };
    const adopted = (await alertmanager.silencesMatching(row.matchers)).find(
      (s) =>
        s.createdBy === silence.createdBy &&
        s.comment === silence.comment &&
        Date.parse(s.endsAt) === Date.parse(silence.endsAt) &&
        sameMatchers(s, row.matchers)
    );
    const silenceId = adopted?.id ?? (await alertmanager.createSilence(silence));
    const updated = await client.query<SilenceRow>(
      `UPDATE controlroom.incident_silences SET silence_id = $2, silenced_at = now() WHERE id = $1 RETURNING *`,
      [rowId, silenceId]
    );
    const until = silence.endsAt.replace(/\.\d{3}Z$/, 'Z');
    const labels = Object.entries(row.matchers)
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ');
    const pageId = await queueIncidentThreadNote(
      client,
      incidentId,
      `Silenced in Alertmanager until ${until} by ${actor} ({${labels}}): ${row.reason}`
    );
    await audit(client, {
      actor,
      action: 'incident.silenced',
      target: `incidents/${incidentId}`,
      payload: {
        silence_id: silenceId,
        matchers: row.matchers,
        starts_at: silence.startsAt,
        ends_at: silence.endsAt,
        reason: row.reason,
        role: request.role,
        adopted: Boolean(adopted),
        slack_page: pageId,
      },
      ipAddress: request.ipAddress,
      userAgent: request.userAgent,
    });
    return { changed: true, silence: updated.rows[0]! };
  });
}
