import type { Pool, PoolClient } from './db.ts';

export interface AuditEntry {
  /** Who did it: a user ("grafana:alice"), or a component ("controlroom:receiver"). */
  actor: string;
  action: string;
  target?: string | null;
  companyId?: string | null;
  payload?: Record<string, unknown>;
  ipAddress?: string | null;
  userAgent?: string | null;
}

/** Appends to the TMS's audit_log; pass the transaction's client so the entry commits with the action. */
export async function audit(db: Pool | PoolClient, entry: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (actor, company_id, action, target, payload, ip_address, user_agent)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      entry.actor,
      entry.companyId ?? null,
      entry.action,
      entry.target ?? null,
      JSON.stringify(entry.payload ?? {}),
      normaliseIp(entry.ipAddress),
      entry.userAgent ?? null,
    ]
  );
}

/** Express gives "::ffff:127.0.0.1" for IPv4 on a dual-stack socket; inet wants the plain form. */
function normaliseIp(ip: string | null | undefined): string | null {
  if (!ip) return null;
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
