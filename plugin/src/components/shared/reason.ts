/** Control Room refuses a control action whose reason is shorter than this (it goes to the audit log). */
const MIN_REASON = 3;

/** Why `reason` would be refused, or null: checked before sending so the form can say it at once. */
export const reasonProblem = (reason: string): string | null =>
  reason.trim().length < MIN_REASON ? `Give a reason of at least ${MIN_REASON} characters` : null;
