import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { IngestPriority } from './ingest-priority.ts';

/** A backlog seen now and every 5 ms until the returned function is called (a webhook flood). */
function startFlood(priority: IngestPriority): () => void {
  priority.backlogSeen();
  const flood = setInterval(() => priority.backlogSeen(), 5);
  return () => clearInterval(flood);
}

describe('IngestPriority: background work waits out a webhook backlog, never longer than its bound', () => {
  test('without a backlog a job starts at once', async () => {
    const priority = new IngestPriority(50);
    assert.equal(priority.busy, false);
    assert.ok((await priority.yieldToWebhooks(2_000)) < 10);
  });

  test('after a backlog a job waits until none was seen for quietMs', async () => {
    const priority = new IngestPriority(60);
    priority.backlogSeen();
    assert.equal(priority.busy, true);
    const waited = await priority.yieldToWebhooks(2_000);
    // Timers may fire late on a loaded machine; the upper bound only tells quiet from the 2 s bound.
    assert.ok(waited >= 55 && waited < 1_000, `waited ${waited} ms`);
    assert.equal(priority.busy, false);
  });

  test('the bound is per backlog: once a flood is older than maxWaitMs, a job starts at once', async () => {
    const priority = new IngestPriority(50);
    const stopFlood = startFlood(priority);
    try {
      const first = await priority.yieldToWebhooks(150);
      assert.ok(first >= 145, `the first job waited only ${first} ms`);
      await sleep(60);
      assert.equal(priority.busy, true, 'the flood goes on');
      const later = await priority.yieldToWebhooks(150);
      assert.ok(later < 10, `a job during a flood older than the bound waited ${later} ms`);
    } finally {
      stopFlood();
    }
    // Quiet again, then a new backlog: its jobs wait again.
    await sleep(80);
    priority.backlogSeen();
    const next = await priority.yieldToWebhooks(1_000);
    assert.ok(next >= 40 && next < 900, `after a quiet spell a new backlog delayed a job ${next} ms`);
  });

  test('two instances over one shared buffer (the HTTP thread and the job-queue thread) see the same backlog', async () => {
    const inbox = new IngestPriority(60);
    const jobs = new IngestPriority(60, inbox.shared);
    assert.equal(jobs.busy, false);
    inbox.backlogSeen();
    assert.equal(jobs.busy, true);
    const waited = await jobs.yieldToWebhooks(2_000);
    assert.ok(waited >= 50 && waited < 1_000, `waited ${waited} ms`);
    assert.equal(new IngestPriority(60).busy, false, 'an instance of its own shares nothing');
  });

  test('a backlog that never ends delays a job by maxWaitMs, not for ever; 0 never waits', async () => {
    const priority = new IngestPriority(50);
    const stopFlood = startFlood(priority);
    try {
      const waited = await priority.yieldToWebhooks(150);
      assert.ok(waited >= 145 && waited < 1_000, `waited ${waited} ms`);
      assert.equal(priority.busy, true);
      assert.ok((await priority.yieldToWebhooks(0)) < 5);
    } finally {
      stopFlood();
    }
  });
});
