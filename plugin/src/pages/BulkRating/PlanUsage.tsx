import React from 'react';
import { Alert, Badge, Stack, Text } from '@grafana/ui';
import type { BulkAllowance, Usage } from '@controlroom/contract';
import { Meter } from '../../components/shared/Meter';
import { formatNumber } from '../../components/shared/format';
import { upgradeText } from './submit';

interface Props {
  allowance: BulkAllowance | undefined;
  usage: Usage | undefined;
}

const limitText = (limit: number | null) =>
  limit === null ? 'unlimited' : limit === 0 ? 'not in plan' : formatNumber(limit);

/**
 * The plan's bulk rating allowance this period (jobs; the hard limit blocks, the included amount is what
 * is paid for), and every metered feature's use, its percentage of the included amount (what the
 * 80/90/100% warnings measure) and overage.
 */
export function PlanUsage({ allowance, usage }: Props) {
  if (!allowance) {
    return null;
  }
  const share = allowance.limit > 0 ? allowance.used / allowance.limit : 0;
  const notInPlan = allowance.limit === 0;
  const periodText =
    allowance.period === 'day'
      ? `today (UTC day ${allowance.periodStart})`
      : `this month (from ${allowance.periodStart})`;
  return (
    <Stack direction="column" gap={1}>
      <Stack alignItems="center" gap={1}>
        <Text element="h3">Plan usage</Text>
        <Badge text={allowance.plan ?? 'no plan'} color={allowance.plan ? 'blue' : 'red'} />
        {allowance.billingStatus && allowance.billingStatus !== 'active' && (
          <Badge text={allowance.billingStatus} color={allowance.billingStatus === 'trialing' ? 'blue' : 'orange'} />
        )}
      </Stack>
      {notInPlan ? (
        <Alert severity="warning" title="Bulk rating is not in this plan">
          {allowance.companyName} is on {allowance.plan ?? 'no plan'}.{' '}
          {allowance.upgrade ? upgradeText(allowance.upgrade, allowance.unit) : 'No active plan includes bulk rating.'}
        </Alert>
      ) : (
        <div data-testid="bulk-allowance">
          <Text>
            Bulk rating jobs {periodText}: <strong>{formatNumber(allowance.used)}</strong> of{' '}
            {limitText(allowance.limit < 0 ? null : allowance.limit)} {allowance.unit}
            {allowance.remaining !== null && <> · {formatNumber(allowance.remaining)} left</>}
            {allowance.included > 0 && <> · {formatNumber(allowance.included)} included, overage billed above</>}
          </Text>
          {allowance.limit > 0 && (
            <Meter
              value={share}
              label="Bulk rating allowance used"
              tone={share >= 1 ? 'error' : share >= 0.8 ? 'warning' : 'primary'}
            />
          )}
        </div>
      )}
      {usage && usage.features.length > 0 && (
        <table className="filter-table" aria-label="Plan features">
          <thead>
            <tr>
              <th>Feature</th>
              <th>Period</th>
              <th>Used (of included)</th>
              <th>Included</th>
              <th>Limit</th>
              <th>Overage</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {usage.features.map((f) => (
              <tr key={f.feature}>
                <td>
                  {f.feature}
                  {f.unit && <Text color="secondary"> ({f.unit})</Text>}
                </td>
                <td>{f.period}</td>
                <td>
                  {formatNumber(f.used)}
                  {f.percent !== null && <Text color="secondary"> ({f.percent}%)</Text>}
                </td>
                <td>{limitText(f.softLimit)}</td>
                <td>{limitText(f.hardLimit)}</td>
                <td>{f.overage > 0 ? formatNumber(f.overage) : '—'}</td>
                <td>
                  {f.hardLimit === 0 ? (
                    <Badge text="not in plan" color="darkgrey" />
                  ) : f.blocked ? (
                    <Badge text="at limit" color="red" />
                  ) : f.percent !== null && f.percent >= 100 ? (
                    <Badge text="overage billed" color="orange" />
                  ) : f.percent !== null && f.percent >= 80 ? (
                    <Badge text="near included amount" color="orange" />
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Stack>
  );
}
