import { withTransaction, type Pool } from '../../core/db.ts';
import { OVERLAND_EXPRESS } from './names.ts';
import { loadPlanLimits } from './profiles.ts';
import { hashSeed, Rng } from './random.ts';
import { seedDirectory, seedQuotes } from './seed-business.ts';
import { insertTenants, planTenants } from './seed-tenants.ts';
import { seedAgentHistory, seedUsage } from './seed-usage.ts';
import { resolveOptions, type DemoOptions } from './state.ts';

/** Serialises concurrent seeders (two demo processes starting together) so only one writes. */
const SEED_LOCK_KEY = hashSeed('controlroom-demo-seed') | 0;

/**
 * Writes the demo's tenants and a month of history in one transaction. Idempotent: a database that already
 * holds the demo tenants (Overland Express is the marker) is left alone.
 */
export async function seedDemo(pool: Pool, options: DemoOptions = {}): Promise<{ created: boolean }> {
  const opts = resolveOptions(options);
  const now = opts.now();
  return withTransaction(pool, 'READ COMMITTED', async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SEED_LOCK_KEY]);
    const existing = await client.query('SELECT 1 FROM companies WHERE name = $1 LIMIT 1', [OVERLAND_EXPRESS]);
    if ((existing.rowCount ?? 0) > 0) return { created: false };

    const rng = new Rng(hashSeed(opts.seed, 'seed'));
    const limits = await loadPlanLimits(client);
    const tenants = planTenants(rng, opts, now);
    await insertTenants(client, rng, tenants);
    await seedQuotes(client, rng, tenants, opts.backfillDays, now);
    const { invites } = await seedDirectory(client, rng, tenants, opts.backfillDays, now);
    await seedUsage(client, rng, tenants, invites, limits, opts, now);
    await seedAgentHistory(client, rng, tenants, now);
    return { created: true };
  });
}
