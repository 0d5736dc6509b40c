import {
  CONTROLROOM_TASK_NAMES,
  incidentAcknowledgeBody,
  incidentPath,
  incidentNoteBody,
  incidentSilenceBody,
  incidentsQuery,
  tasksQuery,
  type AgentTask,
  type Incident,
  type IncidentAcknowledged,
  type IncidentNoteCreated,
  type IncidentsQuery,
  type IncidentsResponse,
  type IncidentSilence,
  type IncidentSilenced,
  type TasksResponse,
} from '@controlroom/contract';
import express, { type Request, type Router } from 'express';
import { actorOf, requireAction } from '../../core/access.ts';
import { audit } from '../../core/audit.ts';
import { withTransaction, type Pool } from '../../core/db.ts';
import { UserError } from '../../core/errors.ts';
import { jsonBody, parseInput } from '../../core/http.ts';
import { acknowledgeIncident, queueIncidentThreadNote } from '../incident-buttons.ts';
import { AlertmanagerClient, silenceIncident, type SilenceRow } from './silences.ts';
import type { IncidentColumns } from './columns.ts';

/** Alert changes listed per incident: a storm group can hold thousands; the first ones tell the story. */
const ALERTS_PER_INCIDENT = 200;
const PAGE_EVENTS_PER_INCIDENT = 50;

/**
 * The query string as an object, refusing parameters the endpoint does not know (a misspelt filter must not
 * silently return everything) and parameters given twice.
 */
function queryOf(req: Request, known: readonly string[], aliases: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(req.query)) {
    const name = aliases[rawName] ?? rawName;
    if (!known.includes(name))
      throw new UserError(400, `invalid query: unknown parameter '${rawName}' (known: ${known.join(', ')})`);
    if (typeof value !== 'string' || name in out)
      throw new UserError(400, `invalid query: ${rawName} must be given once`);
    out[name] = value;
  }
  return out;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/**
 * A link to a page's root message (its thread). slack.com/archives links open in the viewer's own
 * workspace, so the service need not know the workspace's domain; the channel must be the id Slack returned.
 */
const threadUrl = (page: { channel_id: string; ts: string } | null) =>
  page ? `https://slack.com/archives/${page.channel_id}/p${page.ts.replace('.', '')}` : null;

/** The request's address and browser for the audit log (the control API trusts one Grafana hop). */
const meta = (req: Request) => ({ ipAddress: req.ip ?? null, userAgent: req.header('user-agent') ?? null });

const silenceJson = (s: SilenceRow): IncidentSilence => ({
  silenceId: s.silence_id!,
  matchers: s.matchers,
  startsAt: iso(s.starts_at)!,
  endsAt: iso(s.ends_at)!,
  reason: s.reason,
  by: s.created_by,
  active: new Date(s.ends_at).getTime() > Date.now(),
});

/** The Idempotency-Key header, when sent (1-200 printable ASCII characters). */
function idempotencyKey(req: Request): string | null {
  const key = req.header('idempotency-key');
  if (key === undefined) return null;
  if (!/^[\x21-\x7e]{1,200}$/.test(key))
    throw new UserError(400, 'invalid header: Idempotency-Key must be 1-200 printable ASCII characters');
  return key;
}

/** An incident's columns with what the list query computes from them. */
interface IncidentRow extends IncidentColumns {
  ack_breached: boolean;
  resolve_breached: boolean;
  past_sla: boolean;
  until: Date | null;
}

interface TaskRow {
  id: string;
  fn_name: string;
  status: AgentTask['status'];
  company_id: string | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  payload: Record<string, unknown>;
}

const taskJson = (t: TaskRow): AgentTask => ({
  id: String(t.id),
  fnName: t.fn_name,
  status: t.status,
  companyId: t.company_id,
  createdAt: iso(t.created_at)!,
  updatedAt: iso(t.updated_at)!,
  completedAt: iso(t.completed_at),
  payload: t.payload,
});

const STATE_SQL: Record<string, string> = {
  open: 'i.resolved_at IS NULL',
  unacknowledged: 'i.resolved_at IS NULL AND i.acknowledged_at IS NULL',
  acknowledged: 'i.resolved_at IS NULL AND i.acknowledged_at IS NOT NULL',
  resolved: 'i.resolved_at IS NOT NULL',
};

/**
 * Incidents newest first (or the one `id`), with everything GET /api/incidents shows of each. `limit + 1`
 * rows are read so the page knows whether an older page follows.
 */
async function listIncidents(pool: Pool, query: IncidentsQuery & { id?: string }): Promise<IncidentsResponse> {
  const { rows } = await pool.query<IncidentRow>(
    `SELECT i.*,
            coalesce(i.acknowledged_at, now()) >= i.ack_due_at AS ack_breached,
            coalesce(i.resolved_at, now()) >= i.resolve_due_at AS resolve_breached,
            i.resolved_at IS NULL AND (now() >= i.resolve_due_at OR (i.acknowledged_at IS NULL AND now() >= i.ack_due_at)) AS past_sla,
            (SELECT min(n.paged_at) FROM controlroom.incidents n WHERE n.source = i.source AND n.group_key = i.group_key AND n.id > i.id) AS until
       FROM controlroom.incidents i
      WHERE ($1::text IS NULL OR i.severity = $1)
        AND ($2::bigint IS NULL OR i.id < $2)
        AND ($4::bigint IS NULL OR i.id = $4)
        ${query.state ? `AND ${STATE_SQL[query.state]}` : ''}
      ORDER BY i.id DESC
      LIMIT $3`,
    [query.severity ?? null, query.cursor ?? null, query.limit + 1, query.id ?? null]
  );
  const page = rows.slice(0, query.limit);
  const ids = page.map((r) => r.id);
  const [alerts, pages, triggers, tasks, notes, threads, silences] = await Promise.all([
    pool.query<{
      incident_id: string;
      alertname: string;
      fingerprint: string;
      severity: string | null;
      status: 'firing' | 'resolved';
      starts_at: Date;
      received_at: Date;
      labels: Record<string, string>;
      summary: string | null;
    }>(
      `SELECT x.id AS incident_id, e.alertname, e.fingerprint, e.severity, e.status, e.starts_at, e.received_at, e.labels, e.annotations->>'summary' AS summary
         FROM unnest($1::bigint[]) AS x(id)
         CROSS JOIN LATERAL (SELECT * FROM controlroom.alert_events WHERE incident_id = x.id ORDER BY id LIMIT $2) e
        ORDER BY e.id`,
      [ids, ALERTS_PER_INCIDENT]
    ),
    pool.query<{
      incident_id: string;
      action: string;
      ts: Date;
      actor: string;
      channel: string | null;
      slack_ts: string | null;
    }>(
      `SELECT i.id AS incident_id, a.action, a.ts, a.actor, a.payload->>'channel' AS channel, a.payload->>'ts' AS slack_ts
         FROM controlroom.incidents i
         JOIN controlroom.slack_pages p ON p.source = i.source AND p.group_key = i.group_key
         CROSS JOIN LATERAL (
           SELECT * FROM audit_log
            WHERE target = 'slack_pages/' || p.id AND target LIKE 'slack_pages/%'
              AND ts >= i.paged_at
              AND ts < coalesce((SELECT min(n.paged_at) FROM controlroom.incidents n WHERE n.source = i.source AND n.group_key = i.group_key AND n.id > i.id), 'infinity')
            ORDER BY ts, id LIMIT $2) a
        WHERE i.id = ANY($1::bigint[])
        ORDER BY a.ts, a.id`,
      [ids, PAGE_EVENTS_PER_INCIDENT]
    ),
    pool.query<{
      incident_id: string;
      alertname: string;
      slo: string | null;
      firing: boolean;
      started_at: Date;
      resolved_at: Date | null;
    }>(
      `SELECT DISTINCT ON (e.incident_id, t.fingerprint) e.incident_id, t.alertname, t.slo, t.firing, t.started_at, t.resolved_at
         FROM controlroom.alert_events e
         JOIN controlroom.freeze_triggers t ON t.source = e.source AND t.fingerprint = e.fingerprint
        WHERE e.incident_id = ANY($1::bigint[])
        ORDER BY e.incident_id, t.fingerprint`,
      [ids]
    ),
    pool.query<TaskRow & { incident_id: string }>(
      `SELECT DISTINCT ON (e.incident_id, t.id) e.incident_id, t.id, t.fn_name, t.status, t.company_id, t.created_at, t.updated_at, t.completed_at, t.payload
         FROM controlroom.alert_events e
         JOIN agent_tasks t ON t.fn_name = 'notify_ops' AND t.payload->'alert'->>'fingerprint' = e.fingerprint
                           AND (t.payload->'alert'->>'starts_at')::timestamptz = e.starts_at
        WHERE e.incident_id = ANY($1::bigint[]) AND e.status = 'firing'
        ORDER BY e.incident_id, t.id`,
      [ids]
    ),
    pool.query<{ incident_id: string; id: string; text: string; author: string; created_at: Date }>(
      `SELECT incident_id, id, text, author, created_at FROM controlroom.incident_notes
        WHERE incident_id = ANY($1::bigint[]) ORDER BY id`,
      [ids]
    ),
    // Only the group's current incident has the page's thread: an older one's page started over since.
    pool.query<{ incident_id: string; channel_id: string; ts: string }>(
      `SELECT i.id AS incident_id, p.channel_id, p.ts
         FROM controlroom.incidents i
         JOIN controlroom.slack_pages p ON p.source = i.source AND p.group_key = i.group_key
        WHERE i.id = ANY($1::bigint[]) AND p.ts IS NOT NULL AND p.channel_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM controlroom.incidents n
                           WHERE n.source = i.source AND n.group_key = i.group_key AND n.id > i.id)`,
      [ids]
    ),
    // Pending rows (Alertmanager not yet answered) are not silences yet: only those with an id are shown.
    pool.query<SilenceRow>(
      `SELECT * FROM controlroom.incident_silences
        WHERE incident_id = ANY($1::bigint[]) AND silence_id IS NOT NULL ORDER BY id DESC`,
      [ids]
    ),
  ]);
  const by = <T extends { incident_id: string }>(list: T[], id: string) =>
    list.filter((r) => String(r.incident_id) === String(id));
  const incidents: Incident[] = page.map((r) => ({
    id: String(r.id),
    source: r.source,
    groupKey: r.group_key,
    severity: r.severity,
    alertnames: r.alertnames,
    state: r.resolved_at ? 'resolved' : r.acknowledged_at ? 'acknowledged' : 'unacknowledged',
    pagedAt: iso(r.paged_at)!,
    acknowledgeBy: iso(r.ack_due_at)!,
    resolveBy: iso(r.resolve_due_at)!,
    slaTimeZone: r.sla_time_zone,
    acknowledgement:
      r.acknowledged_at && r.acknowledged_via
        ? { at: iso(r.acknowledged_at)!, by: r.acknowledged_by, via: r.acknowledged_via }
        : null,
    resolution:
      r.resolved_at && r.resolved_via ? { at: iso(r.resolved_at)!, by: r.resolved_by, via: r.resolved_via } : null,
    breaches: [
      ...(r.ack_breached ? (['acknowledge'] as const) : []),
      ...(r.resolve_breached ? (['resolve'] as const) : []),
    ],
    pastSla: r.past_sla,
    alerts: by(alerts.rows, r.id).map((e) => ({
      alertname: e.alertname,
      fingerprint: e.fingerprint,
      severity: e.severity,
      status: e.status,
      startsAt: iso(e.starts_at)!,
      receivedAt: iso(e.received_at)!,
      labels: e.labels,
      summary: e.summary,
    })),
    pages: by(pages.rows, r.id).map((p) => ({
      action: p.action,
      at: iso(p.ts)!,
      actor: p.actor,
      channel: p.channel,
      ts: p.slack_ts,
    })),
    slackThreadUrl: threadUrl(by(threads.rows, r.id)[0] ?? null),
    notes: by(notes.rows, r.id).map((n) => ({
      id: String(n.id),
      text: n.text,
      by: n.author,
      at: iso(n.created_at)!,
    })),
    silences: by(silences.rows, r.id).map(silenceJson),
    actions: {
      freezeTriggers: by(triggers.rows, r.id).map((t) => ({
        alertname: t.alertname,
        slo: t.slo,
        firing: t.firing,
        startedAt: iso(t.started_at)!,
        resolvedAt: iso(t.resolved_at),
      })),
      tasks: by(tasks.rows, r.id).map(taskJson),
    },
  }));
  return {
    incidents,
    nextCursor: rows.length > query.limit ? String(page[page.length - 1]!.id) : null,
  };
}

/**
 * Mounted under /api (reads: Viewer, the `read` action like every read; actions: Editor, `incidentsWrite`):
 * - GET /incidents[?severity=P1|P2|P3][&state=open|unacknowledged|acknowledged|resolved][&limit=N][&cursor=C]:
 *   incidents newest first, each with its alert changes, Slack page steps, acknowledgement, resolution, SLA
 *   deadlines and breaches, and the actions taken (release-freeze triggers, notify_ops tasks).
 * - GET /tasks[?fn_name=notify_ops|bulk_rating][&status=…][&limit=N][&cursor=C]: the agent tasks Control Room
 *   created, newest first.
 * - POST /incidents/:id/acknowledge: the Slack Acknowledge button's effect from Grafana (see acknowledgeIncident).
 * - POST /incidents/:id/notes {text}: a note, stored and replied once in the page's Slack thread.
 * - POST /incidents/:id/silence {durationMinutes | endsAt, reason}: an Alertmanager silence for the group's
 *   common labels, created once (see silences.ts), audited and replied once in the Slack thread.
 * Paging is by id (`cursor` = the last page's nextCursor), so a page is stable while new rows arrive.
 */
export function incidentsApiRouter(pool: Pool, options: { alertmanagerUrl?: string | undefined } = {}): Router {
  const router = express.Router();
  const alertmanager = options.alertmanagerUrl ? new AlertmanagerClient(options.alertmanagerUrl) : null;
  const viewer = requireAction('read');

  router.get('/incidents', viewer, async (req, res) => {
    const query = parseInput(incidentsQuery, queryOf(req, ['severity', 'state', 'limit', 'cursor']), 'query');
    const body: IncidentsResponse = await listIncidents(pool, query);
    res.json(body);
  });

  const editor = requireAction('incidentsWrite');
  const json = jsonBody(16 * 1024);
  const incidentOf = async (id: string) => {
    const [found] = (await listIncidents(pool, { id, limit: 1 })).incidents;
    if (!found) throw new UserError(404, `no incident ${id}`);
    return found;
  };

  // Acknowledge has no body; an empty JSON object is accepted too. Already acknowledged (by anyone, in Slack
  // or here) or resolved: 200 with changed=false, nothing written, nothing posted.
  router.post('/incidents/:id/acknowledge', editor, json, async (req, res) => {
    const id = parseInput(incidentPath, { id: req.params.id }, 'path').id;
    parseInput(incidentAcknowledgeBody, req.body, 'request body');
    const caller = req.caller!;
    const actor = actorOf(caller);
    const result = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const found = await client.query(`SELECT 1 FROM controlroom.incidents WHERE id = $1 FOR UPDATE`, [id]);
      if (found.rowCount === 0) throw new UserError(404, `no incident ${id}`);
      const done = await acknowledgeIncident(client, id, actor, `Acknowledged by ${actor} in Grafana.`);
      if (done.changed)
        await audit(client, {
          actor,
          action: 'incident.acknowledged',
          target: `incidents/${id}`,
          payload: { role: caller.role, slack_page: done.pageId },
          ...meta(req),
        });
      return done;
    });
    const body: IncidentAcknowledged = { changed: result.changed, incident: await incidentOf(id) };
    res.json(body);
  });

  router.post('/incidents/:id/notes', editor, json, async (req, res) => {
    const id = parseInput(incidentPath, { id: req.params.id }, 'path').id;
    const { text } = parseInput(incidentNoteBody, req.body, 'request body');
    const caller = req.caller!;
    const actor = actorOf(caller);
    const noteId = await withTransaction(pool, 'READ COMMITTED', async (client) => {
      const found = await client.query(`SELECT 1 FROM controlroom.incidents WHERE id = $1`, [id]);
      if (found.rowCount === 0) throw new UserError(404, `no incident ${id}`);
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO controlroom.incident_notes (incident_id, text, author) VALUES ($1, $2, $3) RETURNING id`,
        [id, text, actor]
      );
      const pageId = await queueIncidentThreadNote(client, id, `Note from ${actor}: ${text}`);
      await audit(client, {
        actor,
        action: 'incident.note_added',
        target: `incidents/${id}`,
        payload: { note_id: String(rows[0]!.id), text, role: caller.role, slack_page: pageId },
        ...meta(req),
      });
      return String(rows[0]!.id);
    });
    const incident = await incidentOf(id);
    const note = incident.notes.find((n) => n.id === noteId)!;
    const body: IncidentNoteCreated = { note, incident };
    res.status(201).json(body);
  });

  router.post('/incidents/:id/silence', editor, json, async (req, res) => {
    const id = parseInput(incidentPath, { id: req.params.id }, 'path').id;
    const body = parseInput(incidentSilenceBody, req.body, 'request body');
    const caller = req.caller!;
    const { changed, silence } = await silenceIncident(pool, alertmanager, {
      incidentId: id,
      actor: actorOf(caller),
      role: caller.role,
      idempotencyKey: idempotencyKey(req),
      body,
      ...meta(req),
    });
    if (!changed) res.setHeader('Idempotent-Replayed', 'true');
    const response: IncidentSilenced = { changed, silence: silenceJson(silence), incident: await incidentOf(id) };
    res.status(changed ? 201 : 200).json(response);
  });

  router.get('/tasks', viewer, async (req, res) => {
    const query = parseInput(
      tasksQuery,
      queryOf(req, ['fnName', 'status', 'limit', 'cursor'], { fn_name: 'fnName' }),
      'query'
    );
    const names = query.fnName ? [query.fnName] : [...CONTROLROOM_TASK_NAMES];
    const { rows } = await pool.query<TaskRow>(
      `SELECT id, fn_name, status, company_id, created_at, updated_at, completed_at, payload FROM agent_tasks
        WHERE fn_name = ANY($1::text[]) AND fn_name IN ('notify_ops', 'bulk_rating')
          AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR id < $3)
        ORDER BY id DESC LIMIT $4`,
      [names, query.status ?? null, query.cursor ?? null, query.limit + 1]
    );
    const page = rows.slice(0, query.limit);
    const body: TasksResponse = {
      tasks: page.map(taskJson),
      nextCursor: rows.length > query.limit ? String(page[page.length - 1]!.id) : null,
    };
    res.json(body);
  });
  return router;
}
