/** data-testid values of the Incidents page, shared by the page, its Jest tests and the Chromium harness. */
export const testIds = {
  severity: 'incidents-severity',
  state: 'incidents-state',
  row: (id: string) => `incident-${id}`,
  acknowledge: (id: string) => `incident-acknowledge-${id}`,
  noteText: (id: string) => `incident-note-text-${id}`,
  addNote: (id: string) => `incident-add-note-${id}`,
  result: 'incidents-result',
} as const;
