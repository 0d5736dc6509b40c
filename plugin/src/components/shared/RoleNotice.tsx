import React from 'react';
import { Alert } from '@grafana/ui';
import { currentRole, type Role } from '../../api/hooks';

/** Says why controls are disabled, instead of letting the user find out from a refused request. */
export function RoleNotice({ needed, what }: { needed: Role; what: string }) {
  return (
    <Alert severity="info" title={`${needed} role required`}>
      {what}: the Grafana {needed} role is required, and you are signed in as {currentRole()}. You can follow the state
      here.
    </Alert>
  );
}
