/** data-testid values of the Pricing page, shared by the page, its Jest tests and the Chromium harness. */
export const testIds = {
  activeModel: 'pricing-active-model',
  candidate: 'pricing-candidate',
  statsAsOf: 'pricing-stats-as-of',
  modelRow: (version: string) => `pricing-model-${version}`,
  reason: 'pricing-reason',
  candidateModel: 'pricing-candidate-model',
  candidateShare: 'pricing-candidate-share',
  setCandidate: 'pricing-set-candidate',
  activateModel: 'pricing-activate-model',
  activate: 'pricing-activate',
  rollback: 'pricing-rollback',
  result: 'pricing-result',
} as const;
