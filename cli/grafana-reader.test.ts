import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { projectRoot } from '../core/config.ts';
import { createPool, type Pool } from '../core/db.ts';
import { createDatabaseIfMissing } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { createTestDatabase } from '../testing/postgres.ts';

/**
 * provisioning/postgres/10-grafana-reader.sh, the SQL it gives psql, run against a real Postgres: the role
 * Grafana's data source uses reads what the schema owner has and creates later, and can write nothing.
 */

const script = fs.readFileSync(`${projectRoot}/provisioning/postgres/10-grafana-reader.sh`, 'utf8');
const PASSWORD = 'reader-3f9a1c7e5b2d4f6a8c0e';

/** psql's :'var' (literal) and :"var" (identifier) substitutions, as psql does them. */
function substitute(sql: string, vars: Record<string, string>): string {
  return sql
    .replace(/:'(\w+)'/g, (_m, name: string) => `'${vars[name]!.replace(/'/g, "''")}'`)
    .replace(/:"(\w+)"/g, (_m, name: string) => `"${vars[name]!.replace(/"/g, '""')}"`);
}

let adminUrl = '';
let dbName = '';
let pool: Pool;
let reader: pg.Client;

before(async () => {
  // As in the compose stack: an empty database, the script (Postgres's first start), then the migrations.
  const scratch = await createTestDatabase();
  adminUrl = scratch.adminUrl;
  await scratch.drop();
  dbName = `reader_${Date.now()}`;
  await createDatabaseIfMissing(adminUrl, dbName);
  const url = new URL(adminUrl.replace(/\/[^/]+$/, `/${dbName}`));
  pool = createPool(url.toString(), { max: 2, statementTimeoutMs: 30_000, applicationName: 'controlroom-test' });
  const sql = script.slice(script.indexOf("<<'SQL'\n") + 8, script.lastIndexOf('\nSQL'));
  await pool.query(
    substitute(sql, { reader_password: PASSWORD, DBNAME: dbName, owner: decodeURIComponent(url.username) })
  );
  await migrate(url.toString());
  // A later migration: the owner creates a schema and a table in it.
  await pool.query(`CREATE SCHEMA later; CREATE TABLE later.events (id int); INSERT INTO later.events VALUES (1)`);
  url.username = 'grafana_reader';
  url.password = PASSWORD;
  reader = new pg.Client({ connectionString: url.toString() });
  await reader.connect();
});

after(async () => {
  await reader?.end();
  await pool?.end();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
  await admin.query('DROP ROLE IF EXISTS grafana_reader');
  await admin.end();
});

test('the reader reads existing and later tables, by the names the dashboards use', async () => {
  assert.equal(typeof (await reader.query('SELECT count(*)::int AS n FROM companies')).rows[0].n, 'number');
  assert.equal(
    typeof (await reader.query('SELECT count(*)::int AS n FROM controlroom.usage_daily')).rows[0].n,
    'number'
  );
  assert.deepEqual((await reader.query('SELECT id FROM later.events')).rows, [{ id: 1 }]);
});

test('the reader can write, create and lock nothing', async () => {
  const refused = async (sql: string, message: RegExp) => {
    await assert.rejects(reader.query(sql), message, sql);
  };
  await refused(`INSERT INTO later.events VALUES (2)`, /read-only transaction/);
  await refused(`DELETE FROM companies`, /read-only transaction/);
  await refused(`CREATE TABLE public.mine (id int)`, /read-only transaction/);
  // Even after leaving read-only mode for its session, it has no write privilege.
  await reader.query('SET default_transaction_read_only = off');
  await refused(`INSERT INTO later.events VALUES (2)`, /permission denied/);
  await refused(`CREATE TABLE public.mine (id int)`, /permission denied/);
  await refused(
    `LOCK TABLE later.events IN ACCESS EXCLUSIVE MODE`,
    /permission denied|can only be used in transaction/
  );
  assert.deepEqual((await pool.query('SELECT id FROM later.events')).rows, [{ id: 1 }]);
});
