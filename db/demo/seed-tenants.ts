import type { PoolClient } from '../../core/db.ts';
import { brokerNames } from './names.ts';
import { tenantProfile, type DemoTenant } from './profiles.ts';
import type { Rng } from './random.ts';
import { addDays } from './schedule.ts';
import { RowBatch } from './sql.ts';
import type { ResolvedDemoOptions } from './state.ts';

/** A seeded tenant with the dates that decide when it could use the product. */
export interface SeedTenant extends DemoTenant {
  createdAt: Date;
  deletedAt: Date | null;
  trialEndsAt: Date | null;
  subscribed: boolean;
  /** It generated usage and business activity between these two times. */
  activeFrom: Date;
  activeUntil: Date;
}

type Role = 'paying' | 'trialing' | 'trial_converted' | 'trial_lost';

const TRIAL_DAYS = 14;
export const MIN_TENANTS = 8;

/**
 * The tenant mix: plans ~40% starter / 45% pro / 15% enterprise; most paying, some trials still running,
 * ~a quarter whose trial ended this month with about half converted (the trial_to_paid funnel), and one or
 * two soft-deleted (an abandoned trial and a churned customer).
 */
export function planTenants(rng: Rng, options: ResolvedDemoOptions, now: Date): SeedTenant[] {
  const n = options.tenants;
  if (n < MIN_TENANTS) throw new RangeError(`the demo needs at least ${MIN_TENANTS} tenants, got ${n}`);
  const enterprise = Math.max(1, Math.round(n * 0.15));
  const pro = Math.round(n * 0.45);
  // Overland Express takes one of the pro seats.
  const plans = rng.shuffle([
    ...Array<string>(enterprise).fill('enterprise'),
    ...Array<string>(pro - 1).fill('pro'),
    ...Array<string>(n - enterprise - pro).fill('starter'),
  ]);

  const trialing = Math.max(1, Math.round(n * 0.1));
  const ended = Math.max(2, Math.round(n * 0.25));
  const converted = Math.floor(ended / 2);
  const roles = rng.shuffle<Role>([
    ...Array<Role>(trialing).fill('trialing'),
    ...Array<Role>(converted).fill('trial_converted'),
    ...Array<Role>(ended - converted).fill('trial_lost'),
    ...Array<Role>(n - 1 - trialing - ended).fill('paying'),
  ]);

  const names = brokerNames(rng, n);
  const tenants = names.map((name, i): SeedTenant => {
    const plan = i === 0 ? 'pro' : plans[i - 1]!;
    const role: Role = i === 0 ? 'paying' : roles[i - 1]!;
    let trialEndsAt: Date | null = null;
    let createdAt: Date;
    if (role === 'paying') {
      createdAt = i === 0 ? addDays(now, -400) : addDays(now, -rng.between(45, 900));
      // Half of the established customers came in through a trial long ago (outside the 30-day funnel).
      if (rng.chance(0.5)) trialEndsAt = addDays(createdAt, TRIAL_DAYS);
    } else {
      trialEndsAt =
        role === 'trialing' ? addDays(now, rng.between(1, TRIAL_DAYS - 1)) : addDays(now, -rng.between(0.5, 29.5));
      createdAt = addDays(trialEndsAt, -TRIAL_DAYS);
    }
    const subscribed = role === 'paying' || role === 'trial_converted';
    return {
      id: rng.uuid(),
      name,
      plan,
      profile: tenantProfile(options.seed, name, plan),
      createdAt,
      deletedAt: null,
      trialEndsAt,
      subscribed,
      activeFrom: createdAt,
      activeUntil: role === 'trial_lost' ? trialEndsAt! : now,
    };
  });

  const lost = tenants.find((t) => !t.subscribed && t.trialEndsAt && t.trialEndsAt <= now);
  if (lost) lost.deletedAt = minDate(addDays(lost.trialEndsAt!, rng.between(1, 5)), now);
  if (n >= 30) {
    const churned = tenants.find((t, i) => i > 0 && t.subscribed && t.plan === 'starter' && !t.trialEndsAt);
    if (churned) churned.deletedAt = addDays(now, -rng.between(2, 20));
  }
  for (const t of tenants) if (t.deletedAt && t.deletedAt < t.activeUntil) t.activeUntil = t.deletedAt;
  return tenants;
}

const minDate = (a: Date, b: Date) => (a < b ? a : b);

export async function insertTenants(client: PoolClient, rng: Rng, tenants: readonly SeedTenant[]): Promise<void> {
  const companies = new RowBatch('companies', {
    id: 'uuid',
    name: 'text',
    created_at: 'timestamptz',
    deleted_at: 'timestamptz',
  });
  const entitlements = new RowBatch('org_entitlements', {
    company_id: 'uuid',
    plan_id: 'text',
    started_at: 'timestamptz',
    trial_ends_at: 'timestamptz',
    stripe_customer_id: 'text',
    stripe_subscription_id: 'text',
  });
  for (const t of tenants) {
    companies.push({ id: t.id, name: t.name, created_at: t.createdAt, deleted_at: t.deletedAt });
    entitlements.push({
      company_id: t.id,
      plan_id: t.plan,
      started_at: t.createdAt,
      trial_ends_at: t.trialEndsAt,
      stripe_customer_id: t.subscribed ? `cus_demo_${rng.token(14)}` : null,
      stripe_subscription_id: t.subscribed ? `sub_demo_${rng.token(14)}` : null,
    });
  }
  await companies.insert(client);
  await entitlements.insert(client);
}
