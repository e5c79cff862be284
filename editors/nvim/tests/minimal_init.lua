-- Minimal init for the headless tests: this plugin only, no user config.
--   GHOSTLINE_BIN    server binary (default: <repo>/target/debug/ghostline)
--   GHOSTLINE_MODEL  model (default: the server's default)
local tests = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
local plugin = vim.fn.fnamemodify(tests, ':h')
local repo = vim.fn.fnamemodify(plugin, ':h:h')
vim.opt.runtimepath:prepend(plugin)
vim.o.swapfile = false
vim.o.more = false
vim.o.shortmess = vim.o.shortmess .. 'I'
vim.cmd('filetype plugin indent on')

if vim.env.GHOSTLINE_TEST_SETUP == '0' then return end

local bin = vim.env.GHOSTLINE_BIN
if not bin or bin == '' then bin = repo .. '/target/debug/ghostline' end
if bin:sub(1, 1) ~= '/' then bin = repo .. '/' .. bin end

require('ghostline').setup({
  cmd = { bin },
  debounce_ms = 50,
  native = vim.env.GHOSTLINE_NATIVE == '1' and true or (vim.env.GHOSTLINE_NATIVE == '0' and false or 'auto'),
  settings = { model = vim.env.GHOSTLINE_MODEL or '' },
})
