import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { resolveServerPath } from '../../src/serverPath';

const base = { pathEnv: '/usr/local/bin:/usr/bin', extensionPath: '/ext', platform: 'linux' };

test('the setting wins, even over PATH', () => {
  const r = resolveServerPath({ ...base, setting: '/opt/g/ghostline', isExecutable: () => true });
  assert.equal(r.path, '/opt/g/ghostline');
  assert.equal(r.source, 'setting');
});

test('a setting that points nowhere is reported, not replaced by another binary', () => {
  const r = resolveServerPath({ ...base, setting: '/nope/ghostline', isExecutable: (f) => f !== '/nope/ghostline' });
  assert.equal(r.path, undefined);
  assert.deepEqual(r.tried, ['/nope/ghostline']);
});

test('PATH is searched in order', () => {
  const r = resolveServerPath({ ...base, setting: '', isExecutable: (f) => f === '/usr/bin/ghostline' });
  assert.equal(r.path, '/usr/bin/ghostline');
  assert.equal(r.source, 'PATH');
  assert.deepEqual(r.tried, ['/usr/local/bin/ghostline', '/usr/bin/ghostline']);
});

test('the bundled binary is the last resort', () => {
  const r = resolveServerPath({ ...base, setting: '  ', isExecutable: (f) => f === '/ext/server/ghostline' });
  assert.equal(r.path, '/ext/server/ghostline');
  assert.equal(r.source, 'bundled');
});

test('nothing found lists every place tried', () => {
  const r = resolveServerPath({ ...base, setting: '', pathEnv: undefined, isExecutable: () => false });
  assert.equal(r.path, undefined);
  assert.deepEqual(r.tried, ['/ext/server/ghostline']);
});

test('Windows: .exe and ; separators', () => {
  const r = resolveServerPath({
    setting: '',
    pathEnv: 'C:\\a;C:\\b',
    extensionPath: 'C:\\ext',
    platform: 'win32',
    isExecutable: (f) => f.endsWith('ghostline.exe') && f.includes('b'),
  });
  assert.equal(r.source, 'PATH');
  assert.ok(r.path?.endsWith('ghostline.exe'));
});
