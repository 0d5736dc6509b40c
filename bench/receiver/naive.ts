import type { Server } from 'node:http';
import { LogLevel, WebClient } from '@slack/web-api';
import express from 'express';
import { ChannelPacer } from '../../alerting/slack/pacer.ts';

/**
 * The baseline: the receiver most teams write first. It acts before it answers: for every alert in the
 * notification it posts a Slack message (same client settings and the same per-channel spacing as ours),
 * then answers 200. No store, no queue, no dedupe: a redelivered notification posts again.
 */
export interface NaiveReceiver {
  url: string;
  slackCalls(): number;
  close(): Promise<void>;
}

interface NaiveAlert {
  status: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}

export async function startNaiveReceiver(options: {
  token: string;
  slackApiUrl: string;
  intervalMs: number;
  channels: { P1: string; P2: string; P3: string };
}): Promise<NaiveReceiver> {
  const slack = new WebClient('xoxb-naive', {
    slackApiUrl: options.slackApiUrl,
    logLevel: LogLevel.ERROR,
    retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 2_000 },
  });
  const pacer = new ChannelPacer(options.intervalMs);
  let calls = 0;
  const app = express();
  app.post('/webhooks/alertmanager', express.json({ limit: '5mb' }), async (req, res) => {
    if (req.header('authorization') !== `Bearer ${options.token}`) {
      res.status(401).json({ error: 'invalid credentials' });
      return;
    }
    try {
      const alerts = (req.body as { alerts?: NaiveAlert[] }).alerts ?? [];
      for (const alert of alerts) {
        const severity =
          alert.labels.severity === 'P1' || alert.labels.severity === 'P2' ? alert.labels.severity : 'P3';
        const channel = options.channels[severity];
        const text = `${alert.status === 'firing' ? ':red_circle:' : ':large_green_circle:'} [${severity}] ${alert.labels.alertname}: ${alert.annotations?.summary ?? ''}`;
        calls++;
        await pacer.run(channel, () => slack.chat.postMessage({ channel, text }));
      }
      res.status(200).json({ status: 'ok', posted: alerts.length });
    } catch (error) {
      res.status(500).json({ error: (error as Error).message });
    }
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/alertmanager`,
    slackCalls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
