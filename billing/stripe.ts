import Stripe from 'stripe';
import type { BillingConfig } from './config.ts';

export type { Stripe };

/**
 * The Stripe client, or null without STRIPE_SECRET_KEY. STRIPE_API_HOST/PORT/PROTOCOL point it at a
 * local fake in tests. Webhook verification does not need a key: see webhookVerifier.
 */
export function createStripeClient(config: BillingConfig): Stripe | null {
  if (!config.STRIPE_SECRET_KEY) return null;
  return new Stripe(config.STRIPE_SECRET_KEY, {
    maxNetworkRetries: config.STRIPE_MAX_NETWORK_RETRIES,
    timeout: config.STRIPE_TIMEOUT_MS,
    appInfo: { name: 'controlroom' },
    ...(config.STRIPE_API_HOST ? { host: config.STRIPE_API_HOST } : {}),
    ...(config.STRIPE_API_PORT ? { port: config.STRIPE_API_PORT } : {}),
    ...(config.STRIPE_API_PROTOCOL ? { protocol: config.STRIPE_API_PROTOCOL } : {}),
  });
}

/** constructEvent only needs the library's webhook helpers, so a key-less client does for verification. */
export function webhookVerifier(client: Stripe | null): Stripe['webhooks'] {
  return (client ?? new Stripe('sk_unused_for_webhook_verification')).webhooks;
}
