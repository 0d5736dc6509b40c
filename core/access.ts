import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { HttpError } from './http.ts';

export type Role = 'Viewer' | 'Editor' | 'Admin';
const RANK: Record<Role, number> = { Viewer: 1, Editor: 2, Admin: 3 };

export interface Caller {
  login: string;
  role: Role;
  userId: number | null;
  orgId: number | null;
}

export const SECRET_HEADER = 'x-controlroom-secret';

/**
 * Requests reach the control API through Grafana's plugin proxy. The proxy route injects the shared
 * secret (from the app's secureJsonData) as X-Controlroom-Secret, so only Grafana can call; Grafana adds
 * the signed-in user as JSON in X-Grafana-Context (its SignedInUser: Login, OrgRole, IsGrafanaAdmin;
 * older versions spell some keys differently, so both spellings are read).
 */
export function callerFrom(req: Request, apiSecret: string | undefined): Caller {
  if (!apiSecret) throw new HttpError(503, 'CONTROLROOM_API_SECRET is not configured on this server');
  const presented = req.header(SECRET_HEADER);
  if (!presented) throw new HttpError(401, 'missing X-Controlroom-Secret: call through the Grafana app (plugin proxy)');
  const a = Buffer.from(presented);
  const b = Buffer.from(apiSecret);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new HttpError(401, 'invalid X-Controlroom-Secret');

  const raw = req.header('x-grafana-context');
  if (!raw) throw new HttpError(401, 'missing X-Grafana-Context: no signed-in Grafana user');
  let ctx: Record<string, unknown>;
  try {
    ctx = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'X-Grafana-Context is not valid JSON');
  }
  const pick = (...keys: string[]) => keys.map((k) => ctx[k]).find((v) => v !== undefined && v !== null && v !== '');
  if (pick('IsAnonymous', 'isAnonymous') === true) throw new HttpError(401, 'anonymous Grafana users cannot use Control Room');
  const login = String(pick('Login', 'login', 'Email', 'email') ?? '');
  if (!login) throw new HttpError(401, 'X-Grafana-Context has no user login');
  const grafanaAdmin = pick('IsGrafanaAdmin', 'isGrafanaAdmin') === true;
  const orgRole = String(pick('OrgRole', 'orgRole', 'Role', 'role') ?? 'Viewer');
  const role: Role = grafanaAdmin ? 'Admin' : orgRole === 'Admin' || orgRole === 'Editor' ? orgRole : 'Viewer';
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return { login, role, userId: num(pick('UserID', 'UserId', 'userId', 'id')), orgId: num(pick('OrgID', 'OrgId', 'orgId')) };
}

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

/** Lets the request through when the Grafana user has at least `role`; 401/403 with the reason otherwise. */
export function requireRole(role: Role, apiSecret: string | undefined): RequestHandler {
  return (req, _res, next) => {
    const caller = callerFrom(req, apiSecret);
    if (RANK[caller.role] < RANK[role]) {
      throw new HttpError(403, `${role} role required; ${caller.login} is ${caller.role}`);
    }
    req.caller = caller;
    next();
  };
}

/** The audit actor for a caller: "grafana:<login>". */
export const actorOf = (caller: Caller) => `grafana:${caller.login}`;
