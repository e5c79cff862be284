import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backoffDelay, CrashTracker, formatSeconds } from '../../src/backoff';

const cfg = { baseMs: 1000, maxMs: 8000, maxCrashes: 5, windowMs: 60000 };

test('delays double and are capped', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, cfg)), [1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(backoffDelay(0, cfg), 1000);
});

test('restarts with growing delays, then gives up', () => {
  const t = new CrashTracker(cfg);
  const ds = [0, 1, 2, 3, 4].map((i) => t.record(i * 1000));
  assert.ok(ds.every((d) => d.restart));
  assert.deepEqual(ds.map((d) => d.delayMs), [1000, 2000, 4000, 8000, 8000]);
  assert.match(ds[0].message, /restarting in 1 s \(attempt 1 of 5\)/);
  const last = t.record(5000);
  assert.equal(last.restart, false);
  assert.match(last.message, /crashed 6 times/);
});

test('old crashes leave the window', () => {
  const t = new CrashTracker(cfg);
  for (let i = 0; i < 5; i++) t.record(i);
  const d = t.record(120000);
  assert.equal(d.restart, true);
  assert.equal(d.attempt, 1);
});

test('reset forgets crashes', () => {
  const t = new CrashTracker(cfg);
  for (let i = 0; i < 6; i++) t.record(i);
  t.reset();
  assert.equal(t.record(10).attempt, 1);
});

test('seconds formatting', () => {
  assert.equal(formatSeconds(2000), '2 s');
  assert.equal(formatSeconds(1500), '1.5 s');
});
