--- ghostline.ghost: ghost text in Insert mode. Asks the server for
--- `textDocument/inlineCompletion` (debounced while typing), draws the answer with extmarks
--- (`virt_text` on the cursor line, `virt_lines` below), and accepts it whole, by word or by
--- line. Clears on cursor moves, mode changes and buffer changes. Where the running Neovim
--- has `vim.lsp.inline_completion` (0.12+) and `native` allows it, it hands the buffer to
--- that instead and only maps the keys. No prompt logic: the text is the server's.
local uv = vim.uv or vim.loop
local text = require('ghostline.text')
local lsp = require('ghostline.lsp')

local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace('ghostline')

local opts
local enabled = true
local inline_ok = vim.fn.has('nvim-0.10') == 1
local native_bufs = {}

--- The suggestion on screen: { buf, row, col, tick, line, items = { { ghost, replace } }, index, extmark }
local s = {}
--- The request in flight: { client_id, id }
local pending
local timer

local INVOKED, AUTOMATIC = 1, 2

local function mode()
  return api.nvim_get_mode().mode
end

local function cursor()
  local p = api.nvim_win_get_cursor(0)
  return p[1] - 1, p[2]
end

local function get_line(buf, row)
  return api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
end

local function automatic()
  return opts.settings.trigger ~= 'manual'
end

function M.native_available()
  local ic = vim.lsp.inline_completion
  return type(ic) == 'table' and type(ic.enable) == 'function' and type(ic.get) == 'function'
end

--- Whether buffers use Neovim's own inline completion.
function M.use_native()
  if opts.native == false then return false end
  if opts.native == true then return M.native_available() end
  -- 'auto': native, except in manual mode (native asks on every keystroke).
  return M.native_available() and automatic()
end

function M.is_native(buf)
  return native_bufs[buf or api.nvim_get_current_buf()] == true
end

local function stop_timer()
  if timer then timer:stop() end
end

local function cancel_pending()
  if pending then
    local c = vim.lsp.get_client_by_id(pending.client_id)
    if c then pcall(lsp.call, c, 'cancel_request', pending.id) end
    pending = nil
  end
end

--- Removes the ghost text (the request in flight, if any, stays).
function M.clear()
  if s.buf and api.nvim_buf_is_valid(s.buf) then
    api.nvim_buf_clear_namespace(s.buf, M.ns, 0, -1)
  end
  s = {}
end

local function native_mark()
  local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  if not ns then return nil end
  local row = cursor()
  local marks = api.nvim_buf_get_extmarks(0, ns, { row, 0 }, { row, -1 }, { details = true, limit = 1 })
  return marks[1]
end

--- True while the plugin's own suggestion is on screen. In native buffers that is one
--- asked for explicitly (<M-\\>, :GhostlineSuggest, next/prev), which Neovim's API cannot do.
local function own_visible()
  return s.items ~= nil and s.extmark ~= nil and s.buf == api.nvim_get_current_buf()
end

function M.visible()
  if own_visible() then return true end
  if M.is_native() then
    -- Neovim's own state is private; its ghost text is an extmark in its namespace. One on
    -- another line is an expired suggestion Neovim still draws while the user types.
    return native_mark() ~= nil
  end
  return false
end

--- The suggestion on screen as text (for tests and statuslines), or nil.
function M.current_text()
  if own_visible() then return s.items[s.index].ghost end
  if M.is_native() then
    local m = native_mark()
    if not m then return nil end
    local d = m[4]
    local parts = { d.virt_text and d.virt_text[1] and d.virt_text[1][1] or '' }
    for _, vl in ipairs(d.virt_lines or {}) do
      local l = {}
      for _, chunk in ipairs(vl) do
        if chunk[2] ~= 'ComplHintMore' then l[#l + 1] = chunk[1] end
      end
      parts[#parts + 1] = table.concat(l)
    end
    return table.concat(parts, '\n')
  end
  if s.items then return s.items[s.index].ghost end
  return nil
end

local function render()
  local buf = s.buf
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  if M.is_native(buf) then
    -- Do not draw over (or next to) Neovim's own suggestion.
    local nns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
    if nns then api.nvim_buf_clear_namespace(buf, nns, 0, -1) end
  end
  local item = s.items[s.index]
  local line = get_line(buf, s.row)
  local right = line:sub(s.col + 1 + item.replace)
  local lay = text.layout(item.ghost, right, inline_ok, opts.hl_group, vim.bo[buf].tabstop)
  if #s.items > 1 then
    local last = #lay.virt_lines > 0 and lay.virt_lines[#lay.virt_lines] or lay.virt_text
    if right == '' or #lay.virt_lines > 0 then
      table.insert(last, { (' (%d/%d)'):format(s.index, #s.items), 'Comment' })
    end
  end
  local mark = { virt_text = lay.virt_text, virt_text_pos = lay.virt_text_pos, hl_mode = 'combine' }
  if #lay.virt_lines > 0 then mark.virt_lines = lay.virt_lines end
  s.extmark = api.nvim_buf_set_extmark(buf, M.ns, s.row, s.col, mark)
end

--- Asks the server for a suggestion at the cursor. `kind`: 1 Invoked, 2 Automatic.
function M.request(kind)
  kind = kind or INVOKED
  local buf = api.nvim_get_current_buf()
  if kind == AUTOMATIC and (not enabled or not automatic()) then return end
  if mode():sub(1, 1) ~= 'i' then return end
  local client = lsp.get_client(buf)
  if not client then return end
  local row, col = cursor()
  local line = get_line(buf, row)
  local enc = client.offset_encoding or 'utf-16'
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = row, character = text.byte_to_units(line, col, enc) },
    context = { triggerKind = kind },
  }
  cancel_pending()
  local tick = api.nvim_buf_get_changedtick(buf)
  local ok, id
  ok, id = lsp.call(client, 'request', 'textDocument/inlineCompletion', params, function(err, result)
    if pending and pending.id == id then pending = nil end
    if err then
      if err.code ~= -32800 then -- RequestCancelled is expected while typing
        lsp.events_add(('inlineCompletion failed: %s'):format(err.message or vim.inspect(err)))
      end
      return
    end
    -- Drop stale answers: another buffer, an edit or a cursor move since the request.
    if api.nvim_get_current_buf() ~= buf or not api.nvim_buf_is_valid(buf) then return end
    if api.nvim_buf_get_changedtick(buf) ~= tick or mode():sub(1, 1) ~= 'i' then return end
    local r2, c2 = cursor()
    if r2 ~= row or c2 ~= col then return end
    local items = {}
    local raw = type(result) == 'table' and (result.items or result) or {}
    if type(raw) ~= 'table' then raw = {} end
    for _, it in ipairs(raw) do
      local n = text.normalize_item(it, { row = row, col = col, line = line, encoding = enc })
      if n then items[#items + 1] = n end
    end
    if #items == 0 then
      if kind == AUTOMATIC or not s.items then M.clear() end
      return
    end
    M.clear()
    s = { buf = buf, row = row, col = col, tick = tick, line = line, items = items, index = 1 }
    render()
  end, buf)
  if ok then pending = { client_id = client.id, id = id } end
end

--- Debounced automatic request.
function M.schedule()
  if not enabled or not automatic() then return end
  if M.is_native() then return end -- Neovim asks by itself
  timer = timer or uv.new_timer()
  timer:stop()
  timer:start(opts.debounce_ms, 0, vim.schedule_wrap(function()
    M.request(AUTOMATIC)
  end))
end

local function on_text_changed_i(buf)
  if s.buf == buf and s.tick == api.nvim_buf_get_changedtick(buf) then return end -- our own edit
  if M.visible() and s.buf == buf then
    local row, col = cursor()
    local line = get_line(buf, row)
    if row == s.row and col > s.col and line:sub(1, s.col) == s.line:sub(1, s.col) then
      -- Typed the start of the suggestion: keep showing the rest.
      local item = s.items[s.index]
      local rest = text.advance(item.ghost, line:sub(s.col + 1, col))
      if rest then
        s = { buf = buf, row = row, col = col, tick = api.nvim_buf_get_changedtick(buf), line = line, items = { { ghost = rest, replace = item.replace } }, index = 1 }
        render()
        M.schedule()
        return
      end
    end
  end
  M.clear()
  cancel_pending()
  M.schedule()
end

local function on_cursor_moved_i(buf)
  if not s.buf then return end
  if s.buf ~= buf then return M.clear() end
  if api.nvim_buf_get_changedtick(buf) ~= s.tick then return end -- an edit: TextChangedI decides
  local row, col = cursor()
  if row ~= s.row or col ~= s.col then
    M.clear()
    cancel_pending()
  end
end

local function leave()
  stop_timer()
  cancel_pending()
  M.clear()
end

--- Accepts the suggestion: `kind` = 'all' (default), 'word' or 'line'. Returns true if
--- something was inserted.
function M.accept(kind)
  kind = kind or 'all'
  local buf = api.nvim_get_current_buf()
  if not own_visible() then
    if M.is_native(buf) then return M.native_accept(kind) end
    return false
  end
  -- Keys still in typeahead (fast typing, a paste) may have edited the buffer since the
  -- suggestion was drawn; never apply it somewhere else.
  local crow, ccol = cursor()
  if api.nvim_buf_get_changedtick(buf) ~= s.tick or crow ~= s.row or ccol ~= s.col then
    M.clear()
    return false
  end
  local item = s.items[s.index]
  local part = kind == 'word' and text.next_word(item.ghost) or kind == 'line' and text.next_line(item.ghost) or item.ghost
  local rest = item.ghost:sub(#part + 1)
  local lines = text.split_lines(part)
  local replace = rest == '' and item.replace or 0
  stop_timer()
  cancel_pending()
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  local line = get_line(buf, s.row)
  replace = math.min(replace, #line - s.col)
  api.nvim_buf_set_text(buf, s.row, s.col, s.row, s.col + replace, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  if rest ~= '' then
    s = { buf = buf, row = row, col = col, tick = api.nvim_buf_get_changedtick(buf), line = get_line(buf, row), items = { { ghost = rest, replace = item.replace } }, index = 1 }
    render()
  else
    M.clear()
  end
  return true
end

--- Shows the next (dir = 1) or previous (-1) suggestion; asks the server (Invoked) when
--- there is only one.
function M.cycle(dir)
  if not own_visible() and M.is_native() and native_mark() then
    local ic = vim.lsp.inline_completion
    if ic.select then ic.select({ count = dir }) elseif ic.jump then ic.jump({ count = dir }) end
    return true
  end
  if own_visible() and #s.items > 1 then
    s.index = (s.index - 1 + dir) % #s.items + 1
    render()
    return true
  end
  M.request(INVOKED)
  return true
end

--- Hides the suggestion. Returns false when there was none.
function M.dismiss()
  if not own_visible() and M.is_native() then
    if not native_mark() then return false end
    return vim.lsp.inline_completion.get({ on_accept = function() return nil end })
  end
  local had = own_visible()
  stop_timer()
  cancel_pending()
  M.clear()
  return had
end

--- Native mode: accepts through vim.lsp.inline_completion.get(), inserting the item (or its
--- next word or line) ourselves so that an expired item (one Neovim still draws after
--- further typing) is never applied at its old position.
function M.native_accept(kind)
  local ic = vim.lsp.inline_completion
  if not native_mark() then return false end
  return ic.get({
    on_accept = function(item)
      local buf = api.nvim_get_current_buf()
      local row, col = cursor()
      local line = get_line(buf, row)
      local raw = { insertText = item.insert_text }
      local r = item.range
      if type(r) == 'table' and type(r.start) == 'table' and type(r.end_) == 'table' then
        raw.range = {
          start = { line = r.start.row, character = r.start.col },
          ['end'] = { line = r.end_.row, character = r.end_.col },
        }
      end
      local n = text.normalize_item(raw, { row = row, col = col, line = line, encoding = 'utf-8' })
      if not n then return nil end -- expired: the server answers again on the next keystroke
      local part = kind == 'word' and text.next_word(n.ghost) or kind == 'line' and text.next_line(n.ghost) or n.ghost
      local rest = n.ghost:sub(#part + 1)
      local lines = text.split_lines(part)
      local replace = rest == '' and math.min(n.replace, #line - col) or 0
      api.nvim_buf_set_text(buf, row, col, row, col + replace, lines)
      api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
      if rest == '' and item.command then
        local client = vim.lsp.get_client_by_id(item.client_id)
        if client then pcall(lsp.call, client, 'exec_cmd', item.command, { bufnr = buf }) end
      end
      return nil
    end,
  })
end

function M.is_enabled()
  return enabled
end

function M.set_enabled(on)
  enabled = on and true or false
  if not enabled then leave() end
  if M.native_available() then
    for buf in pairs(native_bufs) do
      if api.nvim_buf_is_valid(buf) then vim.lsp.inline_completion.enable(enabled, { bufnr = buf }) end
    end
  end
  if enabled and lsp.status.state == 'disabled' then lsp.set_status({ state = 'ready' }) end
  lsp.set_status(lsp.status) -- refresh listeners (statusline shows "off")
end

--- Called when the ghostline client attaches to a buffer.
function M.on_attach(client, buf)
  if M.use_native() then
    native_bufs[buf] = true
    vim.lsp.inline_completion.enable(enabled, { bufnr = buf })
  end
  -- Also in native buffers: explicit requests are drawn by the plugin and must clear too.
  local group = api.nvim_create_augroup('ghostline_buf_' .. buf, { clear = true })
  local function au(events, fn)
    api.nvim_create_autocmd(events, { group = group, buffer = buf, callback = function() fn(buf) end })
  end
  au('TextChangedI', on_text_changed_i)
  au('CursorMovedI', on_cursor_moved_i)
  au({ 'InsertLeave', 'BufLeave', 'TextChanged' }, leave)
  au('InsertEnter', function() M.schedule() end)
  au('BufUnload', function() api.nvim_del_augroup_by_id(group) end)
  local _ = client
end

function M.setup(o)
  opts = o
  enabled = o.enabled ~= false
  -- Typing done while the model was loading got empty answers: ask again once it is ready.
  local prev = lsp.status.state
  lsp.on_status(function(st)
    local was = prev
    prev = st.state
    if st.state == 'ready' and (was == 'loading' or was == 'starting') then
      vim.schedule(function()
        local buf = api.nvim_get_current_buf()
        if mode():sub(1, 1) == 'i' and lsp.get_client(buf) and not M.is_native(buf) then M.schedule() end
      end)
    end
  end)
  -- Default look: like a comment, unless the colour scheme or the user defines the group.
  vim.cmd(('highlight default link %s Comment'):format(o.hl_group))
end

return M
