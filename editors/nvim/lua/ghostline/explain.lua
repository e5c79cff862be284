--- ghostline.explain: "Explain this function". Runs the server's `ghostline.explainFunction`
--- command (from :GhostlineExplain or from the server's code action) with a work-done
--- token and shows the Markdown in a floating window that fills in as the text streams
--- (`$/progress` reports and `ghostline/explainProgress`). The text is the server's.
local uv = vim.uv or vim.loop
local lsp = require('ghostline.lsp')

local api = vim.api
local M = {}

M.COMMAND = 'ghostline.explainFunction'

local opts = { border = 'rounded', max_width = 0.6, max_height = 0.7 }
local seq = 0
--- { token, buf, win, text, done, result, src_win }
local cur = {}

local function norm(s)
  return (s:gsub('%s+', ' '):gsub('^ ', ''):gsub(' $', ''))
end

--- True when a window/showMessage text is the server's echo of the explanation on screen.
function M.is_echo(message)
  if type(message) ~= 'string' then return false end
  local m = norm(message)
  if m == '' then return false end
  if cur.result and norm(cur.result) ~= '' and m:find(norm(cur.result), 1, true) then return true end
  local t = cur.text and norm(cur.text) or ''
  if #t >= 24 and m:find(t:sub(1, math.min(80, #t)), 1, true) then return true end
  return false
end

local function lines_of(text)
  local out = vim.split(text, '\n', true)
  return out
end

local function size(lines)
  local cols, rows = vim.o.columns, vim.o.lines
  local w = 40
  for _, l in ipairs(lines) do w = math.max(w, vim.fn.strdisplaywidth(l) + 2) end
  w = math.min(w, math.floor(cols * opts.max_width))
  local h = 0
  for _, l in ipairs(lines) do h = h + math.max(1, math.ceil(vim.fn.strdisplaywidth(l) / math.max(1, w))) end
  h = math.max(3, math.min(h, math.floor(rows * opts.max_height)))
  return w, h
end

local function status_line()
  if cur.error then return '✗ ' .. cur.error end
  if cur.done then return '' end
  return cur.text == '' and '⋯ asking the model' or '⋯ generating'
end

local function render()
  if not cur.buf or not api.nvim_buf_is_valid(cur.buf) then return end
  local lines = lines_of(cur.text ~= '' and cur.text or '')
  local st = status_line()
  if st ~= '' then
    if #lines == 1 and lines[1] == '' then lines = { st } else table.insert(lines, ''); table.insert(lines, st) end
  end
  vim.bo[cur.buf].modifiable = true
  api.nvim_buf_set_lines(cur.buf, 0, -1, false, lines)
  vim.bo[cur.buf].modifiable = false
  if cur.win and api.nvim_win_is_valid(cur.win) then
    local w, h = size(lines)
    api.nvim_win_set_config(cur.win, { relative = 'editor', width = w, height = h, row = 1, col = vim.o.columns - w - 2 })
  end
end

local function open(title)
  if cur.win and api.nvim_win_is_valid(cur.win) then api.nvim_win_close(cur.win, true) end
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'markdown'
  api.nvim_buf_set_name(buf, ('ghostline://explain/%d'):format(seq))
  local w, h = size({ title })
  local cfg = {
    relative = 'editor', width = w, height = h, row = 1, col = vim.o.columns - w - 2,
    style = 'minimal', border = opts.border, focusable = true,
  }
  if vim.fn.has('nvim-0.9') == 1 then
    cfg.title = ' ' .. title .. ' '
    cfg.title_pos = 'center'
  end
  local win = api.nvim_open_win(buf, true, cfg)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  vim.wo[win].conceallevel = 2
  for _, key in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', key, function()
      if api.nvim_win_is_valid(win) then api.nvim_win_close(win, true) end
    end, { buffer = buf, nowait = true, silent = true, desc = 'Close the explanation' })
  end
  cur.buf, cur.win = buf, win
end

local function update(text, done)
  if type(text) ~= 'string' then return end
  if done then
    cur.text, cur.done = text, true
  elseif not cur.done and not (#text < #cur.text and cur.text:sub(1, #text) == text) then
    cur.text = text
  end
  render()
end

--- `$/progress` for one of our tokens. Returns true when it was ours.
function M.on_progress(result)
  if cur.token == nil or result.token ~= cur.token then return false end
  local v = result.value
  if type(v) == 'table' and (v.kind == 'report' or v.kind == 'begin') and type(v.message) == 'string' and v.message ~= '' then
    vim.schedule(function() update(v.message, false) end)
  end
  return true
end

--- The `ghostline/explainProgress` notification.
function M.on_explain_progress(p)
  if type(p) ~= 'table' or cur.token == nil then return end
  if p.token ~= nil and p.token ~= cur.token then return end
  vim.schedule(function() update(p.text, false) end)
end

--- Runs the command with `args` (its LSP arguments) for buffer `bufnr`.
function M.run(args, bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local client = lsp.get_client(bufnr)
  if not client then
    vim.notify('ghostline: no server attached to this buffer', vim.log.levels.WARN)
    return
  end
  seq = seq + 1
  local token = ('ghostline-explain-%d-%d'):format(uv.now(), seq)
  local first = type(args) == 'table' and args[1] or {}
  local line = (first.position and first.position.line) or (first.range and first.range.start.line) or 0
  local title = ('Explain: %s:%d'):format(vim.fn.fnamemodify(api.nvim_buf_get_name(bufnr), ':t'), line + 1)
  cur = { token = token, text = '', done = false }
  open(title)
  render()
  lsp.call(client, 'request', 'workspace/executeCommand', {
    command = M.COMMAND,
    arguments = args,
    workDoneToken = token,
  }, function(err, result)
    if cur.token ~= token then return end
    if err then
      cur.error = err.message or vim.inspect(err)
      cur.done = true
      render()
      return
    end
    if type(result) == 'string' then
      cur.result = result
      update(result ~= '' and result or '_The server returned no explanation._', true)
    else
      cur.done = true
      render()
    end
  end, bufnr)
end

--- Arguments for the cursor, or the Visual selection when `range` is given (line1, line2).
function M.arguments(bufnr, range)
  bufnr = bufnr or api.nvim_get_current_buf()
  local client = lsp.get_client(bufnr)
  local enc = client and client.offset_encoding or 'utf-16'
  local t = require('ghostline.text')
  local uri = vim.uri_from_bufnr(bufnr)
  if range then
    local l1, l2 = range[1] - 1, range[2] - 1
    local last = api.nvim_buf_get_lines(bufnr, l2, l2 + 1, false)[1] or ''
    return { { uri = uri, range = { start = { line = l1, character = 0 }, ['end'] = { line = l2, character = t.byte_to_units(last, #last, enc) } } } }
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local line = api.nvim_buf_get_lines(bufnr, row - 1, row, false)[1] or ''
  return { { uri = uri, position = { line = row - 1, character = t.byte_to_units(line, col, enc) } } }
end

--- :GhostlineExplain
function M.explain(range)
  local bufnr = api.nvim_get_current_buf()
  M.run(M.arguments(bufnr, range), bufnr)
end

--- The current explanation (for tests): { text, done, error }.
function M.state()
  return { text = cur.text, done = cur.done, error = cur.error, win = cur.win }
end

function M.setup(o)
  opts = vim.tbl_extend('force', opts, o or {})
  -- The server's code action runs this command; show it here instead of a message.
  vim.lsp.commands[M.COMMAND] = function(command, ctx)
    M.run(command.arguments, ctx and ctx.bufnr)
  end
end

return M
