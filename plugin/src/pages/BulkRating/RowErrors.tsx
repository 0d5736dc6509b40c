import React from 'react';
import { Alert, InteractiveTable } from '@grafana/ui';
import type { RowError } from '@controlroom/contract';

interface Props {
  errors: RowError[];
  rejected: number;
  truncated: boolean;
  /** "line" for CSV files (the header is line 1), "lane" for lanes entered by hand. */
  unit: 'line' | 'lane';
}

/** The rows the server refused, each with every reason, so the file can be fixed and sent again. */
export function RowErrors({ errors, rejected, truncated, unit }: Props) {
  if (rejected === 0) {
    return null;
  }
  return (
    <Alert severity="warning" title={`${rejected} ${rejected === 1 ? 'row was' : 'rows were'} rejected`}>
      <div data-testid="rejected-rows">
        <InteractiveTable
          columns={[
            { id: 'line', header: unit === 'line' ? 'Line' : 'Lane', disableGrow: true },
            { id: 'reason', header: 'Why' },
          ]}
          data={errors}
          getRowId={(r) => String(r.line)}
          pageSize={10}
        />
      </div>
      {truncated && <div>Only the first {errors.length} rejected rows are listed.</div>}
    </Alert>
  );
}
