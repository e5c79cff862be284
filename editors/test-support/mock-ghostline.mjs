#!/usr/bin/env node
// A stand-in for `ghostline` that speaks the protocol the editor clients rely on
// (initialize, background "model load" with work-done progress and ghostline/status,
// document sync, textDocument/inlineCompletion, the explain code action and command with
// streaming, ghostline.debugDocument), with canned answers and no model.
//
// It exists to debug and test the clients' glue quickly; it is NOT the server and proves
// nothing about completions. The editor tests run against the real binary by default and use
// this only when GHOSTLINE_BIN points at it. Suggestion rule: after a line `def NAME(ARGS):`
// it suggests `return <args joined by +>`; elsewhere `pass`.
//
// Env: MOCK_LOAD_MS (default 600) delays "ready"; MOCK_CRASH_AFTER=N exits after N requests.

import process from 'node:process';

const docs = new Map();
let buf = Buffer.alloc(0);
let nextId = 1;
let requests = 0;
let ready = false;

function send(msg) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...msg }), 'utf8');
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}
const log = (...a) => process.stderr.write(`[mock-ghostline] ${a.join(' ')}\n`);
const notify = (method, params) => send({ method, params });
const request = (method, params) => send({ id: `s${nextId++}`, method, params });

function offsetAt(text, pos) {
  const lines = text.split('\n');
  let off = 0;
  for (let i = 0; i < pos.line && i < lines.length; i++) off += lines[i].length + 1;
  return off + Math.min(pos.character, (lines[pos.line] ?? '').length);
}

function suggest(text, pos) {
  const lines = text.split('\n');
  const line = lines[pos.line] ?? '';
  const typed = line.slice(0, pos.character).trimStart();
  // Inside a function whose body is empty so far (a docstring at most): return the sum.
  for (let i = pos.line - 1; i >= 0; i--) {
    const m = /^\s*def\s+\w+\s*\(([^)]*)\)\s*(->[^:]*)?:\s*$/.exec(lines[i]);
    if (m) {
      const args = m[1].split(',').map((s) => s.split(':')[0].split('=')[0].trim()).filter(Boolean);
      const full = args.length ? `return ${args.join(' + ')}` : 'pass';
      // Typed-through: the user typed the start of it; suggest the rest.
      return full.startsWith(typed) && full !== typed ? full.slice(typed.length) : null;
    }
    const t = lines[i].trim();
    if (t !== '' && !/^("""|''')/.test(t)) break;
  }
  return 'pass';
}

async function loadModel() {
  const token = 'ghostline-load';
  request('window/workDoneProgress/create', { token });
  notify('$/progress', { token, value: { kind: 'begin', title: 'ghostline: loading model', percentage: 0 } });
  const total = Number(process.env.MOCK_LOAD_MS ?? 600);
  for (let p = 0; p <= 100; p += 25) {
    notify('ghostline/status', { state: 'loading', percentage: p, message: 'mock model' });
    notify('$/progress', { token, value: { kind: 'report', percentage: p } });
    await new Promise((r) => setTimeout(r, total / 5));
  }
  notify('$/progress', { token, value: { kind: 'end' } });
  ready = true;
  notify('ghostline/status', { state: 'ready', message: 'mock model' });
}

async function explain(id, params) {
  const arg = params.arguments?.[0] ?? {};
  const token = params.workDoneToken;
  const text = docs.get(arg.uri) ?? '';
  const line = arg.position?.line ?? arg.range?.start.line ?? 0;
  const src = text.split('\n')[line] ?? '';
  const parts = ['### What it does\n\n', `The function on line ${line + 1} (\`${src.trim()}\`) `, 'adds its arguments ', 'and returns the sum.\n\n', '- No side effects.\n'];
  let sofar = '';
  if (token !== undefined) notify('$/progress', { token, value: { kind: 'begin', title: 'Explaining', message: '' } });
  for (const p of parts) {
    sofar += p;
    if (token !== undefined) notify('$/progress', { token, value: { kind: 'report', message: sofar } });
    notify('ghostline/explainProgress', { token, uri: arg.uri, text: sofar, done: false });
    await new Promise((r) => setTimeout(r, 150));
  }
  if (token !== undefined) notify('$/progress', { token, value: { kind: 'end' } });
  notify('ghostline/explainProgress', { token, uri: arg.uri, text: sofar, done: true });
  notify('window/showMessage', { type: 3, message: sofar });
  send({ id, result: sofar });
}

function handle(msg) {
  if (msg.id !== undefined && msg.method === undefined) return; // a response to our request
  if (msg.id !== undefined) requests++;
  if (process.env.MOCK_CRASH_AFTER && requests > Number(process.env.MOCK_CRASH_AFTER)) {
    log('crashing on purpose');
    process.exit(3);
  }
  const p = msg.params ?? {};
  switch (msg.method) {
    case 'initialize':
      log('initialize', JSON.stringify(p.initializationOptions ?? null));
      return send({
        id: msg.id,
        result: {
          capabilities: {
            textDocumentSync: { openClose: true, change: 2 },
            inlineCompletionProvider: true,
            completionProvider: {},
            codeActionProvider: true,
            executeCommandProvider: { commands: ['ghostline.explainFunction', 'ghostline.debugDocument'] },
          },
          serverInfo: { name: 'mock-ghostline', version: '0' },
        },
      });
    case 'initialized':
      void loadModel();
      return;
    case 'shutdown':
      return send({ id: msg.id, result: null });
    case 'exit':
      process.exit(0);
    case 'workspace/didChangeConfiguration':
      log('didChangeConfiguration', JSON.stringify(p));
      return;
    case 'textDocument/didOpen':
      docs.set(p.textDocument.uri, p.textDocument.text);
      return;
    case 'textDocument/didChange': {
      let text = docs.get(p.textDocument.uri) ?? '';
      for (const c of p.contentChanges) {
        if (!c.range) text = c.text;
        else text = text.slice(0, offsetAt(text, c.range.start)) + c.text + text.slice(offsetAt(text, c.range.end));
      }
      docs.set(p.textDocument.uri, text);
      return;
    }
    case 'textDocument/didClose':
      docs.delete(p.textDocument.uri);
      return;
    case 'textDocument/inlineCompletion': {
      log('inlineCompletion', JSON.stringify(p.position), 'triggerKind', p.context?.triggerKind);
      const s = ready ? suggest(docs.get(p.textDocument.uri) ?? '', p.position) : null;
      if (!s) return send({ id: msg.id, result: { items: [] } });
      notify('ghostline/status', { state: 'generating' });
      setTimeout(() => {
        notify('ghostline/status', { state: 'ready' });
        send({ id: msg.id, result: { items: [{ insertText: s, range: { start: p.position, end: p.position } }] } });
      }, 50);
      return;
    }
    case 'textDocument/codeAction':
      return send({
        id: msg.id,
        result: [{ title: 'Explain this function', kind: 'refactor', command: { title: 'Explain this function', command: 'ghostline.explainFunction', arguments: [{ uri: p.textDocument.uri, position: p.range.start }] } }],
      });
    case 'workspace/executeCommand':
      if (p.command === 'ghostline.explainFunction') return void explain(msg.id, p);
      if (p.command === 'ghostline.debugDocument') return send({ id: msg.id, result: docs.get(p.arguments?.[0]) ?? null });
      return send({ id: msg.id, error: { code: -32601, message: `unknown command ${p.command}` } });
    case '$/cancelRequest':
      return;
    default:
      if (msg.id !== undefined) send({ id: msg.id, error: { code: -32601, message: `unhandled ${msg.method}` } });
  }
}

process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const sep = buf.indexOf('\r\n\r\n');
    if (sep < 0) return;
    const m = /Content-Length: (\d+)/i.exec(buf.slice(0, sep).toString());
    if (!m) { buf = buf.slice(sep + 4); continue; }
    const len = Number(m[1]);
    if (buf.length < sep + 4 + len) return;
    const body = buf.slice(sep + 4, sep + 4 + len).toString('utf8');
    buf = buf.slice(sep + 4 + len);
    try { handle(JSON.parse(body)); } catch (e) { log('error', e.stack); }
  }
});
process.stdin.on('end', () => process.exit(0));
