-- Unit tests of the pure modules (ghostline.text, ghostline.config), run inside Neovim:
--   nvim --headless -u tests/minimal_init.lua -c 'luafile tests/unit.lua'
-- with GHOSTLINE_TEST_SETUP=0. Prints "N passed, N failed" and exits non-zero on failure.
local text = require('ghostline.text')
local config = require('ghostline.config')

local passed, failed = 0, 0
local function out(s) io.stdout:write(s .. '\n') end

local function eq(a, b, what)
  if vim.deep_equal(a, b) then
    passed = passed + 1
  else
    failed = failed + 1
    out(('FAIL %s\n  expected: %s\n  got:      %s'):format(what, vim.inspect(b), vim.inspect(a)))
  end
end

-- Position encodings: "é" is 2 bytes / 1 UTF-16 unit, "😀" 4 bytes / 2 units / 1 code point.
local line = 'aé😀b'
eq(text.byte_to_units(line, 0, 'utf-16'), 0, 'utf16 start')
eq(text.byte_to_units(line, 3, 'utf-16'), 2, 'utf16 after é')
eq(text.byte_to_units(line, 7, 'utf-16'), 4, 'utf16 after emoji')
eq(text.byte_to_units(line, 7, 'utf-32'), 3, 'utf32 after emoji')
eq(text.byte_to_units(line, 7, 'utf-8'), 7, 'utf8 is bytes')
eq(text.units_to_byte(line, 4, 'utf-16'), 7, 'utf16 → byte after emoji')
eq(text.units_to_byte(line, 2, 'utf-16'), 3, 'utf16 → byte after é')
eq(text.units_to_byte(line, 99, 'utf-16'), #line, 'clamped to the line')
eq(text.units_to_byte(line, 3, 'utf-32'), 7, 'utf32 → byte')

eq(text.split_lines('a\nb\n'), { 'a', 'b', '' }, 'split lines')
eq(text.split_lines(''), { '' }, 'split empty')

-- Normalising items against the cursor.
local ctx = { row = 3, col = 4, line = '    ', encoding = 'utf-16' }
local at = { line = 3, character = 4 }
eq(text.normalize_item({ insertText = 'return a + b', range = { start = at, ['end'] = at } }, ctx),
  { ghost = 'return a + b', replace = 0 }, 'item at the cursor')
eq(text.normalize_item({ insertText = 'return a + b' }, ctx), { ghost = 'return a + b', replace = 0 }, 'item without range')
eq(text.normalize_item({ insertText = '    return x', range = { start = { line = 3, character = 0 }, ['end'] = at } }, ctx),
  { ghost = 'return x', replace = 0 }, 'range from the line start: typed part skipped')
eq(text.normalize_item({ insertText = 'xx', range = { start = { line = 3, character = 0 }, ['end'] = at } }, ctx),
  nil, 'text that does not continue the line is dropped')
eq(text.normalize_item({ insertText = 'foo)', range = { start = at, ['end'] = { line = 3, character = 5 } } },
  { row = 3, col = 4, line = '    )', encoding = 'utf-16' }), { ghost = 'foo)', replace = 1 }, 'replaces a closing bracket')
eq(text.normalize_item({ insertText = 'x', range = { start = { line = 2, character = 0 }, ['end'] = at } }, ctx), nil, 'multi-line range dropped')
eq(text.normalize_item({ insertText = '' }, ctx), nil, 'empty dropped')
eq(text.normalize_item({ insertText = { kind = 'snippet', value = 'f(${1:x})$0' } }, ctx), { ghost = 'f(x)', replace = 0 }, 'snippet text')
eq(text.normalize_item({ insertText = 'é!', range = { start = { line = 0, character = 2 }, ['end'] = { line = 0, character = 2 } } },
  { row = 0, col = 3, line = 'aé', encoding = 'utf-16' }), { ghost = 'é!', replace = 0 }, 'utf-16 range after a 2-byte char')

-- Partial accepts.
eq(text.next_word('return a + b'), 'return', 'word')
eq(text.next_word(' a + b'), ' a', 'word with space')
eq(text.next_word(' + b'), ' +', 'punctuation run')
eq(text.next_word('\n    return x'), '\n    return', 'word across a line break')
eq(text.next_word('   '), '   ', 'only blanks')
eq(text.next_line('a + b\nreturn c'), 'a + b', 'line')
eq(text.next_line('\n    return c\nx'), '\n    return c', 'line after a break')
eq(text.next_line('abc'), 'abc', 'last line')

eq(text.advance('return a', 'ret'), 'urn a', 'typed through')
eq(text.advance('return a', 'rx'), nil, 'typed something else')
eq(text.advance('ab', 'ab'), nil, 'typed all')

-- Layout: inline (0.10+) and overlay (0.7-0.9).
eq(text.layout('x = 1', '', true, 'G', 4), { virt_text = { { 'x = 1', 'G' } }, virt_text_pos = 'inline', virt_lines = {} }, 'inline single')
eq(text.layout('foo', ')', false, 'G', 4), { virt_text = { { 'foo', 'G' }, { ')', 'Normal' } }, virt_text_pos = 'overlay', virt_lines = {} }, 'overlay redraws the right text')
eq(text.layout('a\n\tb', '', false, 'G', 4), { virt_text = { { 'a', 'G' } }, virt_text_pos = 'overlay', virt_lines = { { { '    b', 'G' } } } }, 'virt_lines, tabs expanded')
eq(text.layout('a\nb', ')', false, 'G', 4).virt_lines, { { { 'b', 'G' }, { ')', 'Normal' } } }, 'right text moves to the last line')

-- Config.
local o = config.resolve({ keymaps = { accept = '<C-l>' }, filetypes = { 'python' }, settings = { threads = 4 } })
eq(o.keymaps.accept, '<C-l>', 'keymap override')
eq(o.keymaps.dismiss, '<C-]>', 'other keymaps kept')
eq(o.filetypes, { 'python' }, 'lists replace')
eq(o.settings.threads, 4, 'setting override')
eq(o.settings.repoContext.enabled, true, 'nested default kept')
eq(config.resolve({ keymaps = { accept_word = false } }).keymaps.accept_word, false, 'a keymap can be disabled')

eq(config.server_settings(config.defaults.settings, '/h'),
  { model = '', repoContext = { enabled = true, recentFiles = true }, prefill = { enabled = true }, fimTemplate = '', trigger = 'automatic', backend = 'local', remote = { endpoint = '', model = '', apiKeyFile = '', caFile = '' } }, 'defaults → server object')
eq(config.server_settings({ model = '~/m.gguf', threads = 2, contextSize = 4096, maxTokens = 64.9, timeBudgetMs = 800,
  repoContext = { enabled = false, budgetTokens = 512, recentFiles = false }, window = { prefixChars = 8000, suffixChars = 1500 },
  prefill = { enabled = false }, fimTemplate = 'T', trigger = 'manual',
  backend = 'openai', remote = { endpoint = ' http://gpu:8000/v1 ', model = 'Qwen/Qwen2.5-Coder-7B',
    apiKeyFile = '~/key', caFile = '/etc/ca.pem', timeoutMs = 2500 } }, '/h'),
  { model = '/h/m.gguf', threads = 2, contextSize = 4096, maxTokens = 64, timeBudgetMs = 800,
    repoContext = { enabled = false, budgetTokens = 512, recentFiles = false }, window = { prefixChars = 8000, suffixChars = 1500 },
    prefill = { enabled = false }, fimTemplate = 'T', trigger = 'manual',
    backend = 'openai', remote = { endpoint = 'http://gpu:8000/v1', model = 'Qwen/Qwen2.5-Coder-7B',
      apiKeyFile = '/h/key', caFile = '/etc/ca.pem', timeoutMs = 2500 } }, 'all keys')
eq(config.server_settings({ threads = -1, window = { prefixChars = 'big', suffixChars = -2 }, trigger = 'x', backend = 'vllm', remote = { timeoutMs = -3 } }, '/h'),
  { model = '', repoContext = { enabled = true, recentFiles = true }, prefill = { enabled = true }, fimTemplate = '', trigger = 'automatic', backend = 'local', remote = { endpoint = '', model = '', apiKeyFile = '', caFile = '' } }, 'bad values dropped')
local ss = { threads = 2, repoContext = { enabled = true } }
eq(config.configuration_item('ghostline', ss), ss, 'configuration: section')
eq(config.configuration_item('ghostline.repoContext.enabled', ss), true, 'configuration: dotted')
eq(config.configuration_item('ghostline.model', ss), vim.NIL, 'configuration: missing')
eq(config.configuration_item('editor', ss), vim.NIL, 'configuration: foreign')

local v = vim.version()
out(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
out(('nvim-unit: %d passed, %d failed'):format(passed, failed))
vim.cmd(failed == 0 and 'qall!' or 'cquit 1')
