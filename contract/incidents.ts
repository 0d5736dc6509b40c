import { z } from 'zod';

/**
 * GET /api/incidents and GET /api/tasks (Viewer): what the alert receiver did. Field names are camelCase;
 * the query parameter `fn_name` is also accepted as `fnName`. Times are ISO 8601 (UTC).
 */

export const incidentSeverity = z.enum(['P1', 'P2', 'P3']);
/** open = not resolved (acknowledged or not); unacknowledged and acknowledged narrow it; resolved = over. */
export const incidentStateFilter = z.enum(['open', 'unacknowledged', 'acknowledged', 'resolved']);
export const incidentState = z.enum(['unacknowledged', 'acknowledged', 'resolved']);

const limit = z.coerce.number().int().min(1).max(500).default(50);
/** Paging: pass the previous page's nextCursor to get the next (older) page. */
const cursor = z
  .string()
  .regex(/^[1-9]\d{0,17}$/, 'must be the nextCursor of a previous page')
  .optional();

export const incidentsQuery = z.object({
  severity: incidentSeverity.optional(),
  state: incidentStateFilter.optional(),
  limit,
  cursor,
});
export type IncidentsQuery = z.infer<typeof incidentsQuery>;

const isoTime = z.string();

export const incidentStep = z.object({
  at: isoTime,
  /** A Slack user (`@name`), or null for Alertmanager/Grafana. */
  by: z.string().nullable(),
  /**
   * slack_button, slack_resolve (the Resolve button), alert_resolved (every alert of the group resolved),
   * grafana (the Incidents page's Acknowledge; `by` is then `grafana:<login>`).
   */
  via: z.enum(['slack_button', 'slack_resolve', 'alert_resolved', 'grafana']),
});

/** A note an Editor added on the Incidents page (also posted in the page's Slack thread). */
export const incidentNote = z.object({
  id: z.string(),
  text: z.string(),
  /** `grafana:<login>` */
  by: z.string(),
  at: isoTime,
});
export type IncidentNote = z.infer<typeof incidentNote>;

export const incidentAlertChange = z.object({
  alertname: z.string(),
  fingerprint: z.string(),
  severity: z.string().nullable(),
  status: z.enum(['firing', 'resolved']),
  startsAt: isoTime,
  receivedAt: isoTime,
  labels: z.record(z.string(), z.string()),
  summary: z.string().nullable(),
});

/** A Slack step of the incident's page, from the audit log (posted, escalated, folded into a storm digest…). */
export const incidentPageEvent = z.object({
  action: z.string(),
  at: isoTime,
  actor: z.string(),
  channel: z.string().nullable(),
  ts: z.string().nullable(),
});

export const incidentFreezeTrigger = z.object({
  alertname: z.string(),
  slo: z.string().nullable(),
  firing: z.boolean(),
  startedAt: isoTime,
  resolvedAt: isoTime.nullable(),
});

export const agentTask = z.object({
  id: z.string(),
  fnName: z.string(),
  status: z.enum(['queued', 'running', 'success', 'failed']),
  companyId: z.string().nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
  completedAt: isoTime.nullable(),
  payload: z.record(z.string(), z.unknown()),
});
export type AgentTask = z.infer<typeof agentTask>;

/** An Alertmanager silence an Editor created from the Incidents page (POST /api/incidents/:id/silence). */
export const incidentSilence = z.object({
  /** Alertmanager's silence id (GET /api/v2/silence/{id}). */
  silenceId: z.string(),
  /** Equality matchers: the group's common labels (the commonLabels of its latest notification). */
  matchers: z.record(z.string(), z.string()),
  startsAt: isoTime,
  endsAt: isoTime,
  reason: z.string(),
  /** `grafana:<login>` (Alertmanager's createdBy). */
  by: z.string(),
  /** Whether endsAt is still ahead (Alertmanager may also have had it expired early by hand). */
  active: z.boolean(),
});
export type IncidentSilence = z.infer<typeof incidentSilence>;

export const incident = z.object({
  id: z.string(),
  source: z.enum(['alertmanager', 'grafana']),
  groupKey: z.string(),
  severity: incidentSeverity,
  alertnames: z.array(z.string()),
  state: incidentState,
  pagedAt: isoTime,
  acknowledgeBy: isoTime,
  resolveBy: isoTime,
  slaTimeZone: z.string(),
  acknowledgement: incidentStep.nullable(),
  resolution: incidentStep.nullable(),
  /** Stages that missed their deadline, including an open incident whose deadline has passed. */
  breaches: z.array(z.enum(['acknowledge', 'resolve'])),
  pastSla: z.boolean(),
  alerts: z.array(incidentAlertChange),
  pages: z.array(incidentPageEvent),
  /** Link to the page's root message in Slack, when the incident was posted there. */
  slackThreadUrl: z.string().nullable(),
  /** Notes, oldest first. */
  notes: z.array(incidentNote),
  /** Silences created from the Incidents page, newest first. */
  silences: z.array(incidentSilence),
  actions: z.object({
    freezeTriggers: z.array(incidentFreezeTrigger),
    /** notify_ops tasks the incident's usage alerts created (limit_breach). */
    tasks: z.array(agentTask),
  }),
});
export type Incident = z.infer<typeof incident>;

export const incidentsResponse = z.object({
  incidents: z.array(incident),
  /** Cursor of the next (older) page, null on the last page. */
  nextCursor: z.string().nullable(),
});
export type IncidentsResponse = z.infer<typeof incidentsResponse>;

/** The agent tasks Control Room itself creates; GET /api/tasks lists only these. */
export const CONTROLROOM_TASK_NAMES = ['notify_ops', 'bulk_rating'] as const;

export const tasksQuery = z.object({
  fnName: z.enum(CONTROLROOM_TASK_NAMES).optional(),
  status: z.enum(['queued', 'running', 'success', 'failed']).optional(),
  limit,
  cursor,
});
export type TasksQuery = z.infer<typeof tasksQuery>;

export const tasksResponse = z.object({
  tasks: z.array(agentTask),
  nextCursor: z.string().nullable(),
});
export type TasksResponse = z.infer<typeof tasksResponse>;

/** The numeric id of an incident in a path (`/api/incidents/:id/...`). */
export const incidentPath = z.object({
  id: z.string().regex(/^[1-9]\d{0,17}$/, 'must be an incident id (a whole number)'),
});

/** POST /api/incidents/:id/acknowledge takes no body (or an empty object). */
export const incidentAcknowledgeBody = z.strictObject({}).optional();

/**
 * POST /api/incidents/:id/acknowledge (Editor): no body. Acknowledging an incident already acknowledged or
 * resolved is a 200 with `changed: false` and the incident as it stands.
 */
export const incidentAcknowledged = z.object({
  /** false: it was already acknowledged (by anyone) or resolved; nothing was written. */
  changed: z.boolean(),
  incident: incident,
});
export type IncidentAcknowledged = z.infer<typeof incidentAcknowledged>;

/** POST /api/incidents/:id/notes (Editor). */
export const incidentNoteBody = z.strictObject({
  text: z.string().trim().min(1, 'must not be empty').max(2000, 'must be at most 2000 characters'),
});
export type IncidentNoteBody = z.infer<typeof incidentNoteBody>;
export const incidentNoteCreated = z.object({ note: incidentNote, incident: incident });
export type IncidentNoteCreated = z.infer<typeof incidentNoteCreated>;

/** The longest silence the Incidents page creates: 7 days (a longer one should be a fix or a rule change). */
export const SILENCE_MAX_MINUTES = 7 * 24 * 60;

/**
 * POST /api/incidents/:id/silence (Editor): exactly one of `durationMinutes` (1 to SILENCE_MAX_MINUTES) or
 * `endsAt` (an ISO 8601 time in the future, at most SILENCE_MAX_MINUTES ahead), and a reason (Alertmanager's
 * comment). The same request repeated (same Idempotency-Key header, or without one the same incident, user,
 * reason and duration/endsAt while its silence lasts) returns the silence made the first time.
 */
export const incidentSilenceBody = z
  .strictObject({
    durationMinutes: z
      .number()
      .int('must be a whole number of minutes')
      .min(1, 'must be at least 1 minute')
      .max(SILENCE_MAX_MINUTES, `must be at most ${SILENCE_MAX_MINUTES} minutes (7 days)`)
      .optional(),
    endsAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO 8601 time such as 2026-01-31T18:00:00Z' })
      .optional(),
    reason: z
      .string()
      .trim()
      .min(1, 'is required (it becomes the silence comment)')
      .max(500, 'must be at most 500 characters'),
  })
  .refine((b) => (b.durationMinutes === undefined) !== (b.endsAt === undefined), {
    message: 'give exactly one of durationMinutes or endsAt',
  });
export type IncidentSilenceBody = z.infer<typeof incidentSilenceBody>;

/** 201 when a silence was created, 200 (with `changed: false`, header Idempotent-Replayed) on a repeat. */
export const incidentSilenced = z.object({
  changed: z.boolean(),
  silence: incidentSilence,
  incident: incident,
});
export type IncidentSilenced = z.infer<typeof incidentSilenced>;
