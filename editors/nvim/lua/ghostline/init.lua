--- ghostline for Neovim: local code completion as ghost text from the `ghostline` language
--- server, with Neovim's built-in LSP client (0.7+).
---
---   require('ghostline').setup({ ... })   -- see :help ghostline
---
--- This module wires the options, commands, keymaps and the FileType autocmd; the server
--- client is ghostline.lsp, the ghost text ghostline.ghost, the explanation window
--- ghostline.explain, :checkhealth ghostline.health.
local config = require('ghostline.config')
local lsp = require('ghostline.lsp')
local ghost = require('ghostline.ghost')
local explain = require('ghostline.explain')

local api = vim.api
local M = {}

local opts

function M.options()
  return opts
end

-- Public actions, for your own mappings (e.g. a <Tab> shared with a completion plugin).
M.accept = function() return ghost.accept('all') end
M.accept_word = function() return ghost.accept('word') end
M.accept_line = function() return ghost.accept('line') end
M.next = function() return ghost.cycle(1) end
M.prev = function() return ghost.cycle(-1) end
M.dismiss = function() return ghost.dismiss() end
M.suggest = function() return ghost.request(1) end
M.visible = function() return ghost.visible() end
M.explain = function(range) return explain.explain(range) end

function M.toggle()
  ghost.set_enabled(not ghost.is_enabled())
  vim.notify('ghostline: suggestions ' .. (ghost.is_enabled() and 'enabled' or 'disabled'))
end

--- Short state for a statusline: "ghostline: ready", "ghostline: loading 42%", …
function M.statusline()
  local s = lsp.status
  if not ghost.is_enabled() then return 'ghostline: off' end
  if s.state == 'loading' and s.percentage then return ('ghostline: loading %d%%'):format(s.percentage) end
  return 'ghostline: ' .. s.state
end

--- The state as a table: { state, message?, percentage?, enabled }.
function M.status()
  return vim.tbl_extend('force', {}, lsp.status, { enabled = ghost.is_enabled() })
end

--- Applies new `settings` to the running servers (e.g. a different model).
function M.set_settings(settings)
  opts.settings = config.merge(opts.settings, settings)
  lsp.push_settings()
end

local function map_keys(k)
  local function map(lhs, fn, desc, fallback)
    if not lhs or lhs == false then return end
    vim.keymap.set('i', lhs, function()
      if not fn() and fallback then
        api.nvim_feedkeys(api.nvim_replace_termcodes(lhs, true, false, true), 'n', false)
      end
    end, { silent = true, desc = 'ghostline: ' .. desc })
  end
  -- Alt-chords are not fed back when nothing is shown: unmapped, Neovim would read them as
  -- <Esc> + key and leave Insert mode.
  map(k.accept, M.accept, 'accept suggestion', false)
  map(k.accept_word, M.accept_word, 'accept next word', false)
  map(k.accept_line, M.accept_line, 'accept next line', false)
  map(k.next, M.next, 'next suggestion', false)
  map(k.prev, M.prev, 'previous suggestion', false)
  map(k.dismiss, M.dismiss, 'dismiss suggestion', true)
  map(k.suggest, function() M.suggest() return true end, 'suggest now', false)
  if k.tab then
    map('<Tab>', function() return M.visible() and M.accept() end, 'accept suggestion or <Tab>', true)
  end
end

local function commands()
  local cmd = api.nvim_create_user_command
  cmd('GhostlineToggle', M.toggle, { desc = 'ghostline: toggle suggestions' })
  cmd('GhostlineEnable', function() ghost.set_enabled(true) end, {})
  cmd('GhostlineDisable', function() ghost.set_enabled(false) end, {})
  cmd('GhostlineStatus', function()
    local s = lsp.status
    print(M.statusline() .. (s.message and (' — ' .. s.message) or ''))
  end, {})
  cmd('GhostlineSuggest', function() M.suggest() end, { desc = 'ghostline: ask for a suggestion now (Insert mode)' })
  cmd('GhostlineRestart', function() lsp.restart() end, {})
  cmd('GhostlineStop', function() lsp.stop() end, {})
  cmd('GhostlineExplain', function(a)
    M.explain(a.range > 0 and { a.line1, a.line2 } or nil)
  end, { range = true, desc = 'ghostline: explain the function at the cursor (or the selected lines)' })
  cmd('GhostlineLog', function()
    vim.cmd('tabnew ' .. vim.fn.fnameescape(lsp.log_path()))
  end, { desc = 'ghostline: open the LSP log (the server\'s stderr is logged there)' })
end

local function filetype_match(ft)
  for _, f in ipairs(opts.filetypes) do
    if f == ft or f == '*' then return true end
  end
  return false
end

function M.setup(user)
  opts = config.resolve(user)
  lsp.setup(opts)
  ghost.setup(opts)
  explain.setup(opts.explain)
  commands()
  map_keys(opts.keymaps)
  local group = api.nvim_create_augroup('ghostline', { clear = true })
  api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(a)
      if filetype_match(vim.bo[a.buf].filetype) then lsp.attach(a.buf) end
    end,
  })
  -- Buffers already open when setup() runs.
  for _, b in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(b) and filetype_match(vim.bo[b].filetype) then lsp.attach(b) end
  end
  return M
end

return M
