// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';
import { MessageChannel } from 'node:worker_threads';

// React 19's DOM server renderer (loaded by @grafana/ui 13) schedules work through MessageChannel,
// which browsers have and jsdom does not.
Object.assign(global, { MessageChannel });
