/** data-testid values of the Incidents page, shared by the page, its Jest tests and the Chromium harness. */
export const testIds = {
  severity: 'incidents-severity',
  state: 'incidents-state',
  row: (id: string) => `incident-${id}`,
  acknowledge: (id: string) => `incident-acknowledge-${id}`,
  noteText: (id: string) => `incident-note-text-${id}`,
  addNote: (id: string) => `incident-add-note-${id}`,
  silence: (id: string) => `incident-silence-${id}`,
  silenced: (id: string) => `incident-silenced-${id}`,
  silenceDuration: 'incident-silence-duration',
  silenceReason: 'incident-silence-reason',
  silenceReasonMissing: 'incident-silence-reason-missing',
  silenceConfirm: 'incident-silence-confirm',
  loadMore: 'incidents-load-more',
  result: 'incidents-result',
} as const;
