import type { Pool } from '../core/db.ts';

export interface CompanyBilling {
  stripeCustomerId?: string | null;
  stripeSubscriptionId?: string | null;
}

/** A live TMS company entitled to `plan` (optionally linked to Stripe); returns its id. */
export async function insertCompany(
  pool: Pool,
  name: string,
  plan: string,
  billing: CompanyBilling = {}
): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(`INSERT INTO companies (name) VALUES ($1) RETURNING id`, [name]);
  const id = rows[0]!.id;
  await pool.query(
    `INSERT INTO org_entitlements (company_id, plan_id, stripe_customer_id, stripe_subscription_id) VALUES ($1, $2, $3, $4)`,
    [id, plan, billing.stripeCustomerId ?? null, billing.stripeSubscriptionId ?? null]
  );
  return id;
}
