import { api, ApiError } from '../../api/client';
import type { BulkLaneInput, LimitRefusalDetails, LimitRequestAnswer, RowError, SubmitBulkJobResponse, UpgradeHint } from '@controlroom/contract';

/** A lane typed by hand on the page: the JSON upload's lane. */
export type Lane = BulkLaneInput;

/** A key per submission, so a retried or double-clicked upload creates one job. */
export function newIdempotencyKey(): string {
  // randomUUID needs a secure context; Grafana is often served over plain http inside a network.
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto && window.isSecureContext
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ''));
    reader.onerror = () =>
      reject(new Error(`could not read ${file.name}: ${reader.error?.message ?? 'unknown error'}`));
    reader.readAsText(file);
  });
}

export async function submitCsv(companyId: string, file: File, key: string): Promise<SubmitBulkJobResponse> {
  // Grafana's backendSrv passes string bodies through untouched but turns other non-JSON bodies
  // (a File included, in some versions) into URLSearchParams, so the file goes as its text.
  const text = await readText(file);
  return api<SubmitBulkJobResponse>('bulk-rating/jobs', {
    method: 'POST',
    params: { companyId: companyId, filename: file.name },
    data: text,
    headers: { 'Content-Type': 'text/csv', 'Idempotency-Key': key },
  });
}

export function submitLanes(companyId: string, lanes: Lane[], key: string): Promise<SubmitBulkJobResponse> {
  return api<SubmitBulkJobResponse>('bulk-rating/jobs', {
    method: 'POST',
    data: { companyId: companyId, lanes },
    headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
  });
}

/** The row errors a refused submission carried (400 "no valid lanes" lists them in details). */
export function rowErrorsOf(error: unknown): RowError[] {
  if (error instanceof ApiError && error.details && typeof error.details === 'object') {
    const errors = (error.details as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      return errors.filter((e): e is RowError => typeof e?.line === 'number' && typeof e?.reason === 'string');
    }
  }
  return [];
}

/** A job refused by the plan (402 not included, 429 hard limit), with the server's details; else null. */
export function limitRefusalOf(error: unknown): (LimitRefusalDetails & { status: number }) | null {
  if (!(error instanceof ApiError) || (error.status !== 402 && error.status !== 429)) {
    return null;
  }
  const details = error.details as Partial<LimitRefusalDetails> | undefined;
  if (!details || typeof details.limit !== 'number' || typeof details.feature !== 'string') {
    return null;
  }
  return { ...(details as LimitRefusalDetails), status: error.status };
}

/** "unlimited jobs per day" / "10 jobs per day": what a plan includes, for hints. */
export const planAmount = (limit: number, unit: string, period: string) =>
  `${limit < 0 ? 'unlimited' : limit.toLocaleString('en-US')} ${unit} per ${period}`;

/** The upgrade hint's sentence: the next plan that includes more. */
export const upgradeText = (upgrade: UpgradeHint, unit: string) =>
  `The ${upgrade.name} plan includes ${planAmount(upgrade.hardLimit, unit, upgrade.period)}.`;

export function requestIncrease(companyId: string, feature: string, requestedLimit: number, reason: string) {
  return api<LimitRequestAnswer>('limits/requests', {
    method: 'POST',
    data: { companyId: companyId, feature, requestedLimit: requestedLimit, reason },
    headers: { 'Content-Type': 'application/json' },
  });
}
