import React, { SyntheticEvent, useState } from 'react';
import { lastValueFrom } from 'rxjs';
import { AppPluginMeta, PluginConfigPageProps, PluginMeta } from '@grafana/data';
import { getBackendSrv } from '@grafana/runtime';
import { Alert, Button, Field, FieldSet, Input, SecretInput, Stack } from '@grafana/ui';

export type AppSettings = {
  apiUrl?: string;
};

export interface AppConfigProps extends PluginConfigPageProps<AppPluginMeta<AppSettings>> {}

/** A base URL Grafana's server can reach (the plugin proxy calls it, not the browser). */
export function apiUrlProblem(value: string): string | null {
  if (!value) {
    return 'Enter the Control Room API URL';
  }
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return 'Use an http:// or https:// URL';
    }
    if (url.pathname !== '/' && url.pathname !== '') {
      return 'Give the base URL only (the routes add /api/...)';
    }
    return null;
  } catch {
    return `'${value}' is not a URL`;
  }
}

/** The app's settings: where Control Room is, and the shared secret the proxy routes send it. */
const AppConfig = ({ plugin }: AppConfigProps) => {
  const { enabled, pinned, jsonData, secureJsonFields } = plugin.meta;
  const [apiUrl, setApiUrl] = useState(jsonData?.apiUrl ?? '');
  const [secret, setSecret] = useState('');
  const [secretSet, setSecretSet] = useState(Boolean(secureJsonFields?.apiSecret));
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const urlProblem = apiUrlProblem(apiUrl.trim());
  const canSave = !urlProblem && (secretSet || secret.length > 0) && !saving;

  const onSubmit = async (event: SyntheticEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!canSave) {
      return;
    }
    setSaving(true);
    setError(null);
    try {
      await updatePlugin(plugin.meta.id, {
        enabled: enabled ?? true,
        pinned: pinned ?? true,
        jsonData: { ...jsonData, apiUrl: apiUrl.trim().replace(/\/$/, '') },
        // Sent only when changed: the stored secret cannot be read back, so leaving it out keeps it.
        ...(secretSet ? {} : { secureJsonData: { apiSecret: secret } }),
      });
      // The app's settings reach the plugin only on a fresh load.
      window.location.reload();
    } catch (e) {
      const data = (e as { data?: { message?: string } }).data;
      setError(data?.message ?? (e instanceof Error ? e.message : 'could not save the settings'));
      setSaving(false);
    }
  };

  return (
    <form onSubmit={onSubmit}>
      <FieldSet label="Control Room API">
        <Field
          label="API URL"
          description="Base URL of the Control Room service as Grafana's server reaches it, e.g. http://controlroom:8471"
          invalid={!!apiUrl && !!urlProblem}
          error={urlProblem}
        >
          <Input
            width={60}
            id="config-api-url"
            value={apiUrl}
            placeholder="http://controlroom:8471"
            onChange={(e) => setApiUrl(e.currentTarget.value)}
          />
        </Field>
        <Field
          label="API secret"
          description="Control Room's CONTROLROOM_API_SECRET; stored encrypted and sent only by Grafana's proxy"
        >
          <SecretInput
            width={60}
            id="config-api-secret"
            value={secret}
            isConfigured={secretSet}
            placeholder="Shared secret"
            onChange={(e) => setSecret(e.currentTarget.value)}
            onReset={() => {
              setSecret('');
              setSecretSet(false);
            }}
          />
        </Field>
        <Stack direction="column" gap={1}>
          <div>
            <Button type="submit" disabled={!canSave}>
              {saving ? 'Saving…' : 'Save settings'}
            </Button>
          </div>
          {error && (
            <Alert severity="error" title="Settings not saved">
              {error}
            </Alert>
          )}
        </Stack>
      </FieldSet>
    </form>
  );
};

export default AppConfig;

async function updatePlugin(pluginId: string, data: Partial<PluginMeta>) {
  return lastValueFrom(
    getBackendSrv().fetch({ url: `/api/plugins/${pluginId}/settings`, method: 'POST', data, showErrorAlert: false })
  );
}
