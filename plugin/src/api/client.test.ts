import { config } from '@grafana/runtime';
import { api, ApiError, apiLinkUrl, apiUrl } from './client';
import { ACTIONS, canDo, currentRole } from './hooks';
import { installBackend, signInAs } from '../testing/fakeBackend';

describe('api client', () => {
  it('calls the Control Room API through the plugin proxy with the query encoded', async () => {
    const calls = installBackend(() => ({ data: { ok: true } }));
    await expect(api('bulk-rating/jobs', { params: { companyId: 'a b', limit: 5, empty: '' } })).resolves.toEqual({
      ok: true,
    });
    expect(calls[0]!.url).toBe('/api/plugin-proxy/transbot-controlroom-app/bulk-rating/jobs?companyId=a%20b&limit=5');
    expect(apiUrl('/freeze')).toBe('/api/plugin-proxy/transbot-controlroom-app/freeze');
  });

  it("puts Grafana's sub path in front of plain links (downloads), which skip backendSrv", () => {
    const before = config.appSubUrl;
    config.appSubUrl = '/grafana';
    try {
      expect(apiLinkUrl('bulk-rating/jobs/j1/results', { format: 'csv' })).toBe(
        '/grafana/api/plugin-proxy/transbot-controlroom-app/bulk-rating/jobs/j1/results?format=csv'
      );
    } finally {
      config.appSubUrl = before;
    }
  });

  it("surfaces Control Room's own error message and details", async () => {
    installBackend(() => ({ status: 429, data: { error: 'over the monthly limit', details: { limit: 10 } } }));
    const error = (await api('x').catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(429);
    expect(error.message).toBe('over the monthly limit');
    expect(error.details).toEqual({ limit: 10 });
  });

  it("explains Grafana's route refusal in terms of the user's role", async () => {
    installBackend(() => ({ status: 403, data: { message: 'plugin proxy route access denied' } }));
    await expect(api('regions/failover', { method: 'POST' })).rejects.toThrow(
      'Your Grafana role does not allow this action'
    );
    installBackend(() => ({ status: 502, data: {} }));
    await expect(api('regions')).rejects.toThrow('HTTP 502');
  });

  it("reads the org role from boot data; a Grafana server admin with a Viewer org role is a Viewer (Grafana's reqRole rule)", () => {
    signInAs('Viewer');
    expect(currentRole()).toBe('Viewer');
    signInAs('Editor');
    expect(currentRole()).toBe('Editor');
    signInAs('Viewer', true);
    expect(currentRole()).toBe('Viewer');
    expect(canDo('failoverWrite')).toBe(false);
    signInAs('Admin');
    expect(canDo('failoverWrite')).toBe(true);
  });

  it("follows Grafana's RBAC grants in boot data where the app's actions are listed", () => {
    signInAs('Editor', false, { [ACTIONS.failoverWrite.action]: true, [ACTIONS.bulkWrite.action]: true });
    expect(canDo('failoverWrite')).toBe(true);
    expect(canDo('freezeWrite')).toBe(false);
    signInAs('Admin', false, { [ACTIONS.bulkWrite.action]: true });
    expect(canDo('failoverWrite')).toBe(false);
  });
});
