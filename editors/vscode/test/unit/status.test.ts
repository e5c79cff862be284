import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseStatus, statusView } from '../../src/status';

test('parses the ghostline/status notification', () => {
  assert.deepEqual(parseStatus({ state: 'loading', percentage: 41.6, message: 'model.gguf' }), {
    state: 'loading',
    percentage: 42,
    message: 'model.gguf',
  });
  assert.deepEqual(parseStatus({ state: 'ready' }), { state: 'ready' });
  assert.deepEqual(parseStatus({ state: 'loading', percentage: 250 }), { state: 'loading', percentage: 100 });
  assert.equal(parseStatus({ state: 'weird' }), undefined);
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus('ready'), undefined);
});

test('each state has its text', () => {
  assert.equal(statusView({ state: 'loading', percentage: 42 }, true).text, '$(loading~spin) ghostline 42%');
  assert.equal(statusView({ state: 'loading' }, true).text, '$(loading~spin) ghostline');
  assert.equal(statusView({ state: 'ready' }, true).text, '$(sparkle) ghostline');
  assert.equal(statusView({ state: 'idle' }, true).text, '$(sparkle) ghostline');
  assert.equal(statusView({ state: 'generating' }, true).text, '$(sync~spin) ghostline');
  assert.equal(statusView({ state: 'disabled' }, true).text, '$(circle-slash) ghostline');
  assert.equal(statusView({ state: 'starting' }, true).text, '$(loading~spin) ghostline');
});

test('errors are red, show the message and open the log on click', () => {
  const v = statusView({ state: 'error', message: 'cannot load /m.gguf: no such file' }, true);
  assert.equal(v.text, '$(error) ghostline');
  assert.equal(v.severity, 'error');
  assert.equal(v.click, 'showLog');
  assert.match(v.tooltip, /cannot load \/m\.gguf/);
});

test('the user toggle overrides everything but errors', () => {
  assert.equal(statusView({ state: 'ready' }, false).text, '$(circle-slash) ghostline');
  assert.equal(statusView({ state: 'generating' }, false).text, '$(circle-slash) ghostline');
  assert.equal(statusView({ state: 'error' }, false).text, '$(error) ghostline');
  assert.equal(statusView({ state: 'ready' }, false).click, 'menu');
});
