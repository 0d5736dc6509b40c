import { audit } from '../../core/audit.ts';
import type { PoolClient } from '../../core/db.ts';
import type { Handover } from '../../core/instance-liveness.ts';
import { SYSTEM_ACTOR } from './settings.ts';

/** A lease the sweep found held, unexpired, by another instance. */
interface HeldLease {
  scope: string;
  epoch: number;
}

/**
 * The failover lease of a dead instance, handed over by the instance-liveness sweep (core/instance-liveness.ts):
 * once the holder's liveness lock is free (its Postgres session ended: stopped, crashed, kill -9), its
 * unexpired leases are expired at once, instead of running out FAILOVER_LEASE_SECONDS. The standby's next
 * lease attempt (at most STANDBY_LEASE_POLL_MS later) then takes the lease under epoch + 1.
 *
 * Fencing is unchanged: only the expiry time moves, and only for the exact (scope, holder, epoch) seen, so
 * a lease renewed or taken over meanwhile is left alone. A holder that is alive but paused keeps its
 * liveness session (Postgres does not end an idle session), so it is not handed over and runs out its
 * lease as before. A holder that is alive but lost its liveness session only (a dropped connection) is
 * treated as dead: its lease expires early, its next renewal fails (renewLease wants an unexpired lease),
 * and every state change it still tries is refused by the epoch check (store.ts `fenced`).
 *
 * Only leases held under a bare instance id (the live scope's engine) are handed over. A drill or game day
 * holds its own scope's lease as `<instance>/<scope>` (an instance id has no `/`); nobody else competes for
 * that scope, and `controlroom drill` run from a shell holds no liveness lock at all, so such a lease is left
 * to run out.
 */
export const failoverLeaseHandover: Handover<HeldLease[]> = {
  name: 'failover lease',
  async heldBy(client) {
    const { rows } = await client.query<{ holder: string; scope: string; epoch: number }>(
      `SELECT lease_holder AS holder, scope, epoch::float8 AS epoch FROM controlroom.failover_control
        WHERE lease_holder IS NOT NULL AND lease_expires_at > now() AND strpos(lease_holder, '/') = 0`
    );
    const byHolder = new Map<string, HeldLease[]>();
    for (const { holder, scope, epoch } of rows)
      byHolder.set(holder, [...(byHolder.get(holder) ?? []), { scope, epoch }]);
    return byHolder;
  },
  async handOver(client, instance, leases) {
    const expired: HeldLease[] = [];
    for (const lease of leases) {
      // The expiry and its audit entry commit together, on the liveness session that holds the dead
      // instance's lock (withTransaction would take another connection from a pool).
      await client.query('BEGIN');
      try {
        if (await expireOne(client, instance, lease)) expired.push(lease);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
    return expired;
  },
};

async function expireOne(client: PoolClient, instance: string, lease: HeldLease): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE controlroom.failover_control SET lease_expires_at = now(), updated_at = now()
      WHERE scope = $1 AND lease_holder = $2 AND epoch = $3 AND lease_expires_at > now()`,
    [lease.scope, instance, lease.epoch]
  );
  if (rowCount !== 1) return false;
  await audit(client, {
    actor: SYSTEM_ACTOR,
    action: 'failover.lease_expired_holder_gone',
    target: `failover_control/${lease.scope}`,
    payload: { scope: lease.scope, holder: instance, epoch: lease.epoch },
  });
  return true;
}
