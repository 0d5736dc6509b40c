import React from 'react';
import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { useStyles2 } from '@grafana/ui';

interface Props {
  /** 0..1; values past 1 are drawn full. */
  value: number;
  label: string;
  tone?: 'primary' | 'success' | 'warning' | 'error';
}

/** A horizontal bar in the theme's colours, with the value for screen readers. */
export function Meter({ value, label, tone = 'primary' }: Props) {
  const styles = useStyles2(getStyles);
  const clamped = Math.max(0, Math.min(1, Number.isFinite(value) ? value : 0));
  return (
    <div
      className={styles.track}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(clamped * 100)}
    >
      <div className={styles.fill(tone)} style={{ width: `${clamped * 100}%` }} />
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  track: css({
    height: theme.spacing(1),
    minWidth: theme.spacing(12),
    borderRadius: theme.shape.radius.pill,
    background: theme.colors.background.secondary,
    border: `1px solid ${theme.colors.border.weak}`,
    overflow: 'hidden',
  }),
  fill: (tone: NonNullable<Props['tone']>) =>
    css({
      height: '100%',
      background: theme.colors[tone].main,
      transition: 'width 0.4s ease',
    }),
});
