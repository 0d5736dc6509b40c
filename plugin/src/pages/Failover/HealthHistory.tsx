import React from 'react';
import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { Badge, Stack, Text, useStyles2 } from '@grafana/ui';
import type { Region } from '@controlroom/contract';
import { Meter } from '../../components/shared/Meter';
import { formatTime, timeAgo } from '../../components/shared/format';

/** One region: health, role, traffic weight and its recent checks, oldest on the left. */
export function RegionCard({ region }: { region: Region }) {
  const styles = useStyles2(getStyles);
  const checks = [...region.checks].reverse();
  const failed = checks.filter((c) => !c.ok).length;
  return (
    <div className={styles.card} data-testid={`region-${region.name}`}>
      <Stack alignItems="center" gap={1} wrap="wrap">
        <Text element="h4">{region.name}</Text>
        {region.active && <Badge text="active (writes)" color="blue" icon="database" />}
        <Badge
          text={region.healthy ? 'healthy' : 'unhealthy'}
          color={region.healthy ? 'green' : 'red'}
          icon={region.healthy ? 'heart' : 'heart-break'}
        />
        <Text color="secondary">{region.role}</Text>
      </Stack>
      <Stack direction="column" gap={0.5}>
        <Text>
          Traffic weight <strong data-testid={`weight-${region.name}`}>{region.traffic_weight}%</strong>
        </Text>
        <Meter
          value={region.traffic_weight / 100}
          label={`${region.name} traffic weight`}
          tone={region.healthy ? 'primary' : 'error'}
        />
      </Stack>
      <Text variant="bodySmall" color="secondary">
        Last check {timeAgo(region.last_check_at)}
        {region.last_latency_ms !== null && ` · ${region.last_latency_ms} ms`}
        {region.replication_lag_seconds !== null && ` · replication lag ${region.replication_lag_seconds}s`}
        {region.health_changed_at &&
          ` · ${region.healthy ? 'healthy' : 'unhealthy'} since ${formatTime(region.health_changed_at)}`}
      </Text>
      {region.last_error && !region.healthy && <Text color="error">{region.last_error}</Text>}
      <div
        className={styles.history}
        aria-label={`${region.name} health history: ${failed} of ${checks.length} checks failed`}
      >
        {checks.map((c) => (
          <span
            key={c.at}
            className={c.ok ? styles.ok : styles.failed}
            title={`${formatTime(c.at)}: ${c.ok ? 'ok' : 'failed'}${c.latency_ms !== null ? `, ${c.latency_ms} ms` : ''}${c.error ? `, ${c.error}` : ''}`}
          />
        ))}
      </div>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => {
  const tick = css({ display: 'inline-block', width: 6, height: 18, borderRadius: 1, marginRight: 2 });
  return {
    card: css({
      display: 'flex',
      flexDirection: 'column',
      gap: theme.spacing(1),
      padding: theme.spacing(2),
      border: `1px solid ${theme.colors.border.weak}`,
      borderRadius: theme.shape.radius.default,
      background: theme.colors.background.primary,
      flex: '1 1 360px',
    }),
    history: css({ display: 'flex', flexWrap: 'wrap', rowGap: 2 }),
    ok: css(tick, { background: theme.colors.success.main }),
    failed: css(tick, { background: theme.colors.error.main }),
  };
};
