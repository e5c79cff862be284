import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  configurationItem,
  DEFAULT_LANGUAGES,
  didChangeConfigurationParams,
  documentSelector,
  enabledLanguages,
  expandPath,
  needsRestart,
  toServerSettings,
} from '../../src/settings';

const paths = { home: '/home/u', workspaceFolder: '/work/proj' };

function getter(values: Record<string, unknown>) {
  return (k: string) => values[k];
}

test('defaults map to the server object: zeros left out, model and template sent empty', () => {
  const s = toServerSettings(
    getter({
      model: '',
      threads: 0,
      contextSize: 0,
      maxTokens: 0,
      timeBudgetMs: 0,
      'repoContext.enabled': true,
      'repoContext.budgetTokens': 0,
      fimTemplate: '',
      trigger: 'automatic',
    }),
    paths,
  );
  assert.deepEqual(s, { model: '', repoContext: { enabled: true, recentFiles: true }, prefill: { enabled: true }, fimTemplate: '', trigger: 'automatic', backend: 'local', remote: { endpoint: '', model: '', apiKeyFile: '', caFile: '' } });
});

test('every setting reaches the server under its contract key', () => {
  const s = toServerSettings(
    getter({
      model: '~/models/m.gguf',
      threads: 4,
      contextSize: 8192,
      maxTokens: 96,
      timeBudgetMs: 1500.7,
      'repoContext.enabled': false,
      'repoContext.budgetTokens': 2048,
      'repoContext.recentFiles': false,
      'window.prefixChars': 8000,
      'window.suffixChars': 1500,
      'prefill.enabled': false,
      fimTemplate: '<PRE> {prefix} <SUF>{suffix} <MID>',
      trigger: 'manual',
      backend: 'openai',
      'remote.endpoint': 'https://gpu.example:8000/v1',
      'remote.model': 'Qwen/Qwen2.5-Coder-7B',
      'remote.apiKeyFile': '~/.config/ghostline/key',
      'remote.caFile': '${workspaceFolder}/ca.pem',
      'remote.timeoutMs': 3000,
    }),
    paths,
  );
  assert.deepEqual(s, {
    model: '/home/u/models/m.gguf',
    threads: 4,
    contextSize: 8192,
    maxTokens: 96,
    timeBudgetMs: 1500,
    repoContext: { enabled: false, budgetTokens: 2048, recentFiles: false },
    window: { prefixChars: 8000, suffixChars: 1500 },
    prefill: { enabled: false },
    fimTemplate: '<PRE> {prefix} <SUF>{suffix} <MID>',
    trigger: 'manual',
    backend: 'openai',
    remote: {
      endpoint: 'https://gpu.example:8000/v1',
      model: 'Qwen/Qwen2.5-Coder-7B',
      apiKeyFile: '/home/u/.config/ghostline/key',
      caFile: '/work/proj/ca.pem',
      timeoutMs: 3000,
    },
  });
});

test('wrong types fall back to defaults instead of reaching the server', () => {
  const s = toServerSettings(getter({ model: 42, threads: 'many', maxTokens: -5, 'window.prefixChars': 'big', 'window.suffixChars': -2, 'repoContext.enabled': 'yes', trigger: 'sometimes', backend: 'vllm', 'remote.timeoutMs': -1 }), paths);
  assert.deepEqual(s, { model: '', repoContext: { enabled: true, recentFiles: true }, prefill: { enabled: true }, fimTemplate: '', trigger: 'automatic', backend: 'local', remote: { endpoint: '', model: '', apiKeyFile: '', caFile: '' } });
});

test('didChangeConfiguration wraps the object as settings.ghostline', () => {
  const s = { model: 'a', trigger: 'manual' as const };
  assert.deepEqual(didChangeConfigurationParams(s), { settings: { ghostline: { model: 'a', trigger: 'manual' } } });
});

test('path expansion: ~, ${workspaceFolder}, ${userHome}', () => {
  assert.equal(expandPath('~', paths), '/home/u');
  assert.equal(expandPath('~/x.gguf', paths), '/home/u/x.gguf');
  assert.equal(expandPath('${workspaceFolder}/m.gguf', paths), '/work/proj/m.gguf');
  assert.equal(expandPath('${userHome}/m.gguf', paths), '/home/u/m.gguf');
  assert.equal(expandPath('  /abs/m.gguf ', paths), '/abs/m.gguf');
  assert.equal(expandPath('', paths), '');
  assert.equal(expandPath('~other/x', paths), '~other/x');
  assert.equal(expandPath('${workspaceFolder}/m', { home: '/h' }), '${workspaceFolder}/m');
});

test('workspace/configuration: whole section, sub-keys, foreign sections', () => {
  const s = toServerSettings(getter({ threads: 2, 'repoContext.budgetTokens': 512 }), paths);
  assert.deepEqual(configurationItem('ghostline', s), { ours: true, value: s });
  assert.deepEqual(configurationItem('ghostline.threads', s), { ours: true, value: 2 });
  assert.deepEqual(configurationItem('ghostline.repoContext.budgetTokens', s), { ours: true, value: 512 });
  assert.deepEqual(configurationItem('ghostline.maxTokens', s), { ours: true, value: null });
  assert.deepEqual(configurationItem('editor', s), { ours: false });
  assert.deepEqual(configurationItem('ghostlineX', s), { ours: false });
  assert.deepEqual(configurationItem(undefined, s), { ours: false });
});

test('languages: defaults, cleaning, selector, wildcard', () => {
  assert.deepEqual(enabledLanguages(undefined), [...DEFAULT_LANGUAGES]);
  assert.ok(DEFAULT_LANGUAGES.includes('python') && DEFAULT_LANGUAGES.includes('rust'));
  assert.deepEqual(enabledLanguages([' python ', 'rust', 'python', 3, '']), ['python', 'rust']);
  assert.deepEqual(documentSelector(['python']), [
    { scheme: 'file', language: 'python' },
    { scheme: 'untitled', language: 'python' },
  ]);
  assert.deepEqual(documentSelector(['python', '*']), [{ scheme: 'file' }, { scheme: 'untitled' }]);
});

test('only server path, languages and tracing need a restart', () => {
  assert.equal(needsRestart((k) => k === 'serverPath'), true);
  assert.equal(needsRestart((k) => k === 'enabledLanguages'), true);
  assert.equal(needsRestart((k) => k === 'model'), false);
  assert.equal(needsRestart((k) => k === 'threads'), false);
});
