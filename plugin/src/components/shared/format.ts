import { dateTimeFormat, dateTimeFormatTimeAgo } from '@grafana/data';

export const formatTime = (iso: string | null | undefined) =>
  iso ? dateTimeFormat(iso, { format: 'YYYY-MM-DD HH:mm:ss' }) : '—';
export const timeAgo = (iso: string | null | undefined) => (iso ? dateTimeFormatTimeAgo(iso) : '—');
export const formatNumber = (n: number | null | undefined) =>
  n === null || n === undefined ? '—' : n.toLocaleString('en-US');
export const formatMoney = (n: number | null | undefined) =>
  n === null || n === undefined ? '—' : n.toLocaleString('en-US', { style: 'currency', currency: 'USD' });

/** A local datetime-local input value (YYYY-MM-DDTHH:mm) → ISO instant, or null when empty/invalid. */
export function isoFromLocalInput(value: string): string | null {
  if (!value) {
    return null;
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The datetime-local input value `hours` from now. */
export function localInputIn(hours: number, now = new Date()): string {
  const d = new Date(now.getTime() + hours * 3_600_000 - now.getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}
