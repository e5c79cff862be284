import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { explainArguments, LSP_AUTOMATIC, LSP_INVOKED, normalizeInlineResult, toLspTriggerKind } from '../../src/protocol';
import { explainTitle, isExplanationEcho, nextText, plainHtml } from '../../src/explainText';

test('VS Code trigger kinds map to LSP 3.18 numbers', () => {
  // vscode.InlineCompletionTriggerKind: Invoke = 0, Automatic = 1
  assert.equal(toLspTriggerKind(0), LSP_INVOKED);
  assert.equal(toLspTriggerKind(1), LSP_AUTOMATIC);
  assert.equal(LSP_INVOKED, 1);
  assert.equal(LSP_AUTOMATIC, 2);
});

test('InlineCompletionList, item arrays and null are accepted', () => {
  const range = { start: { line: 1, character: 4 }, end: { line: 1, character: 4 } };
  assert.deepEqual(normalizeInlineResult({ items: [{ insertText: 'return a + b', range }] }), [
    { text: 'return a + b', range, snippet: false },
  ]);
  assert.deepEqual(normalizeInlineResult([{ insertText: 'x' }]), [{ text: 'x', snippet: false }]);
  assert.deepEqual(normalizeInlineResult(null), []);
  assert.deepEqual(normalizeInlineResult(undefined), []);
  assert.deepEqual(normalizeInlineResult({ items: [] }), []);
  assert.deepEqual(normalizeInlineResult('nonsense'), []);
});

test('snippets, empty texts and bad ranges', () => {
  assert.deepEqual(normalizeInlineResult({ items: [{ insertText: { kind: 'snippet', value: 'f(${1:x})' } }] }), [
    { text: 'f(${1:x})', snippet: true },
  ]);
  assert.deepEqual(normalizeInlineResult({ items: [{ insertText: '' }, { insertText: 'ok', range: { start: 1 } }, null, 3] }), [
    { text: 'ok', snippet: false },
  ]);
  assert.deepEqual(normalizeInlineResult({ items: [{ insertText: 'a', filterText: 'b' }] }), [{ text: 'a', snippet: false, filterText: 'b' }]);
});

test('explain arguments: cursor → position, selection → range', () => {
  const p = { line: 3, character: 7 };
  assert.deepEqual(explainArguments('file:///a.py', { start: p, end: p }), [{ uri: 'file:///a.py', position: p }]);
  const r = { start: { line: 1, character: 0 }, end: { line: 5, character: 2 } };
  assert.deepEqual(explainArguments('file:///a.py', r), [{ uri: 'file:///a.py', range: r }]);
});

test('streamed text: a late duplicate does not shorten what is shown', () => {
  assert.equal(nextText('', 'The func', false), 'The func');
  assert.equal(nextText('The function adds', 'The func', false), 'The function adds');
  assert.equal(nextText('The function adds', 'A rewrite', false), 'A rewrite');
  assert.equal(nextText('The function adds two', 'The function', true), 'The function');
});

test('the server echo of an explanation is recognised', () => {
  const md = '`add(a, b)` returns the sum of its two arguments.\n\nIt has no side effects.';
  assert.equal(isExplanationEcho(md, '', md), true);
  assert.equal(isExplanationEcho('Explanation:\n' + md, '', md), true);
  assert.equal(isExplanationEcho(md, md.slice(0, 40), undefined), true);
  assert.equal(isExplanationEcho('Model loaded.', md, md), false);
  assert.equal(isExplanationEcho('Model loaded.', '', undefined), false);
});

test('fallback rendering escapes HTML; titles name the file and line', () => {
  assert.equal(plainHtml('<b>&'), '<pre class="plain">&lt;b&gt;&amp;</pre>');
  assert.equal(explainTitle('/w/src/app.py', 9), 'Explain: app.py:10');
});
