// Gives Control Room a Grafana service-account token (the compose stack's `grafana-init` service).
//
// Control Room's grafana-id mode reads each user's org role (GET /api/org/users, org.users:read) and the
// app's RBAC actions (GET /api/access-control/users/permissions/search, users.permissions:read) with a
// service-account token. Grafana cannot provision service accounts from files, so this script signs in as
// the admin once Grafana is up, makes sure a `controlroom` service account exists, creates a new token,
// writes it to GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE (atomically, mode 0600) and then deletes the account's
// older tokens. Running it again rotates the token; Control Room reads the file on each role lookup.
//
// Environment: GRAFANA_URL, GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD, GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE.
// Exits 0 once the file is written, 1 with the reason otherwise (Grafana not up within 10 minutes, API refusal).
import fs from 'node:fs';
import path from 'node:path';

const ACCOUNT = 'controlroom';
const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`grafana-service-account: ${name} is not set`);
    process.exit(1);
  }
  return value;
};
const base = need('GRAFANA_URL').replace(/\/$/, '');
const auth = `Basic ${Buffer.from(`${need('GF_SECURITY_ADMIN_USER')}:${need('GF_SECURITY_ADMIN_PASSWORD')}`).toString('base64')}`;
const tokenFile = need('GRAFANA_SERVICE_ACCOUNT_TOKEN_FILE');

async function api(method, route, body) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

async function waitForGrafana() {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Grafana at ${base} did not become healthy within 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

try {
  await waitForGrafana();
  const found = await api('GET', `/api/serviceaccounts/search?query=${ACCOUNT}&perpage=100`);
  // Admin: in Grafana OSS the basic Admin role is the one that holds both org.users:read and users.permissions:read.
  const account =
    found.serviceAccounts.find((a) => a.name === ACCOUNT) ??
    (await api('POST', '/api/serviceaccounts', { name: ACCOUNT, role: 'Admin', isDisabled: false }));
  const created = await api('POST', `/api/serviceaccounts/${account.id}/tokens`, { name: `${ACCOUNT}-${Date.now()}` });
  fs.mkdirSync(path.dirname(tokenFile), { recursive: true });
  const temporary = `${tokenFile}.${process.pid}`;
  fs.writeFileSync(temporary, `${created.key}\n`, { mode: 0o600 });
  fs.renameSync(temporary, tokenFile);
  // The new token is in place: the older ones go, so a leaked earlier token stops working.
  for (const token of await api('GET', `/api/serviceaccounts/${account.id}/tokens`)) {
    if (token.id !== created.id) await api('DELETE', `/api/serviceaccounts/${account.id}/tokens/${token.id}`);
  }
  console.log(
    `grafana-service-account: token for service account ${ACCOUNT} (id ${account.id}) written to ${tokenFile}`
  );
} catch (error) {
  console.error(`grafana-service-account: ${error.message}`);
  process.exit(1);
}
