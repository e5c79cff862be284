-- Headless end-to-end test of the plugin against a real server:
--   nvim --headless -u tests/minimal_init.lua -c 'luafile tests/e2e.lua'
-- Opens a copy of tests/fixture/calc.py, waits for the model, types a function header in
-- Insert mode as a user would (nvim_input), waits for the ghost text extmark, accepts a word
-- (<M-w>) and then the rest (<M-l>), checks the buffer (and, when the server has the
-- test-only command ghostline.debugDocument, that the server holds the same text), leaves
-- Insert mode, and runs :GhostlineExplain until the explanation is complete.
-- Env: E2E_TIMEOUT_S (default 480), E2E_SKIP_EXPLAIN=1, E2E_OUT (folder for the report).
local ghost = require('ghostline.ghost')
local lsp = require('ghostline.lsp')
local explain = require('ghostline.explain')
local api = vim.api
local uv = vim.uv or vim.loop

local t0 = uv.now()
local out_dir = vim.env.E2E_OUT or vim.fn.tempname()
vim.fn.mkdir(out_dir, 'p')
local report = {}
local function log(msg)
  local line = ('[nvim-e2e +%.1fs] %s'):format((uv.now() - t0) / 1000, msg)
  io.stdout:write(line .. '\n')
  io.stdout:flush()
  report[#report + 1] = line
end

local function finish(ok, why)
  if not ok then log('FAIL: ' .. tostring(why)) end
  -- The "screen" of a headless run: the buffer and the ghost text extmarks.
  local buf = api.nvim_get_current_buf()
  local dump = { '--- buffer ' .. api.nvim_buf_get_name(buf) }
  for i, l in ipairs(api.nvim_buf_get_lines(buf, 0, -1, false)) do dump[#dump + 1] = ('%3d| %s'):format(i, l) end
  dump[#dump + 1] = '--- ghostline extmarks'
  for _, m in ipairs(api.nvim_buf_get_extmarks(buf, ghost.ns, 0, -1, { details = true })) do
    dump[#dump + 1] = vim.inspect(m, { newline = ' ', indent = '' })
  end
  dump[#dump + 1] = '--- status ' .. vim.inspect(lsp.status, { newline = ' ', indent = '' })
  dump[#dump + 1] = '--- events\n' .. table.concat(lsp.events, '\n')
  local v = vim.version()
  local f = ('%s/nvim-e2e-%d.%d.%d.txt'):format(out_dir, v.major, v.minor, v.patch)
  vim.fn.writefile(vim.list_extend(vim.deepcopy(report), dump), f)
  if not ok then io.stdout:write(table.concat(dump, '\n') .. '\n') end
  log('report: ' .. f)
  io.stdout:write(('nvim-e2e: %d passed, %d failed\n'):format(ok and 1 or 0, ok and 0 or 1))
  io.stdout:flush()
  vim.cmd(ok and 'qall!' or 'cquit 1')
end

local co
local function sleep(ms)
  local c = coroutine.running()
  vim.defer_fn(function()
    local ok, err = coroutine.resume(c)
    if not ok then finish(false, err) end
  end, ms)
  coroutine.yield()
end

local function wait_for(what, pred, timeout_ms)
  local deadline = uv.now() + timeout_ms
  while true do
    local v = pred()
    if v then return v end
    if uv.now() > deadline then error(('timed out after %d s waiting for %s'):format(timeout_ms / 1000, what), 0) end
    sleep(100)
  end
end

local function lines()
  return api.nvim_buf_get_lines(0, 0, -1, false)
end

local function main()
  local tests = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  vim.fn.writefile(vim.fn.readfile(tests .. '/fixture/calc.py'), dir .. '/calc.py')
  vim.fn.mkdir(dir .. '/.git', 'p') -- the workspace root
  vim.cmd('edit ' .. vim.fn.fnameescape(dir .. '/calc.py'))
  log(('Neovim %s, native inline completion: %s'):format(tostring(vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch), tostring(ghost.use_native())))

  wait_for('the client to attach', function() return lsp.get_client(0) end, 20000)
  log('client attached; waiting for the model')
  local last
  wait_for('the model to load (status ready)', function()
    local s = lsp.status
    local now = s.state .. (s.percentage and (' ' .. s.percentage .. '%') or '')
    if now ~= last then log('status: ' .. now .. (s.message and (' — ' .. s.message) or '')); last = now end
    if s.state == 'error' then error('server error: ' .. tostring(s.message), 0) end
    return s.state == 'ready' or s.state == 'idle'
  end, 300000)

  -- Type like a user: Normal-mode G, o, then the header.
  api.nvim_input('Go')
  sleep(200)
  api.nvim_input('def add(a, b):<CR>')
  sleep(150)
  api.nvim_input('"""Return the sum of a and b."""<CR>')
  wait_for('the typed header', function()
    return api.nvim_get_mode().mode == 'i' and table.concat(lines(), '\n'):find('Return the sum of a and b."""\n', 1, true)
  end, 5000)
  local row = api.nvim_win_get_cursor(0)[1]
  log(('typed the header; cursor on line %d, col %d; waiting for ghost text'):format(row, api.nvim_win_get_cursor(0)[2]))

  -- Automatic requests may come back empty (the server skips unlikely spots, or its time
  -- budget ran out on a cold prompt); after a while ask explicitly (<M-\\>, Invoked), as a
  -- user would.
  local next_nudge = uv.now() + 15000
  local shown = wait_for('ghost text (an extmark on the cursor line)', function()
    if not ghost.visible() and uv.now() > next_nudge then
      log('no ghost text yet; asking explicitly (<M-\\>)')
      api.nvim_input('<M-\\>')
      next_nudge = uv.now() + 30000
    end
    return ghost.visible() and ghost.current_text()
  end, 180000)
  log('ghost text: ' .. vim.inspect(shown))
  local before = lines()
  local base_line = before[row]

  -- Accept one word, then the rest.
  api.nvim_input('<M-w>')
  wait_for('the word accept', function() return lines()[row] ~= base_line end, 5000)
  local word = require('ghostline.text').next_word(shown)
  if not word:find('\n') and lines()[row] ~= base_line .. word then
    error(('accept word: line is %q, expected %q'):format(lines()[row], base_line .. word), 0)
  end
  log('after <M-w>: ' .. vim.inspect(lines()[row]) .. '; still shown: ' .. vim.inspect(ghost.current_text()))
  -- Native mode hides the rest until the server answers the next request.
  shown = wait_for('the rest of the suggestion', function() return ghost.visible() and ghost.current_text() end, 60000)
  before = lines()
  row = api.nvim_win_get_cursor(0)[1]
  base_line = before[row]:sub(1, api.nvim_win_get_cursor(0)[2])
  api.nvim_input('<M-l>')
  wait_for('the full accept', function()
    return not ghost.visible() and table.concat(lines(), '\n') ~= table.concat(before, '\n')
  end, 5000)
  local after = lines()
  local expect = base_line .. shown
  local got = table.concat(vim.list_slice(after, row, row + #vim.split(shown, '\n', true) - 1), '\n')
  if got ~= expect then
    error(('after accept the buffer reads %q, expected %q'):format(got, expect), 0)
  end
  log('accepted; the function now reads:\n' .. table.concat(vim.list_slice(after, row - 2, #after), '\n'))
  if #api.nvim_buf_get_extmarks(0, ghost.ns, 0, -1, {}) > 0 and ghost.current_text() == nil then
    error('extmark left behind after accept', 0)
  end

  -- The server holds the same text (test-only command, when the server has it).
  local client = lsp.get_client(0)
  local done, server_text, server_err = false, nil, nil
  lsp.call(client, 'request', 'workspace/executeCommand', { command = 'ghostline.debugDocument', arguments = { vim.uri_from_bufnr(0) } }, function(err, result)
    server_err, server_text, done = err, result, true
  end, 0)
  wait_for('ghostline.debugDocument', function() return done end, 10000)
  local mine = table.concat(lines(), '\n')
  if server_err then
    log('note: ghostline.debugDocument failed: ' .. (server_err.message or vim.inspect(server_err)))
  else
    -- The text itself, or { uri, version, languageId, text }.
    if type(server_text) == 'table' then server_text = server_text.text end
    if type(server_text) ~= 'string' then error('ghostline.debugDocument returned no text: ' .. vim.inspect(server_text), 0) end
    local a, b = server_text:gsub('\n$', ''), mine:gsub('\n$', '')
    if a ~= b then error(('server text differs from the buffer:\n--- server\n%s\n--- buffer\n%s'):format(server_text, mine), 0) end
    log('the server holds the same text as the buffer')
  end

  -- Leaving Insert mode clears everything.
  api.nvim_input('<Esc>')
  wait_for('Normal mode', function() return api.nvim_get_mode().mode == 'n' end, 5000)
  sleep(300)
  if #api.nvim_buf_get_extmarks(0, ghost.ns, 0, -1, {}) > 0 then error('ghost text left after <Esc>', 0) end

  if vim.env.E2E_SKIP_EXPLAIN ~= '1' then
    api.nvim_win_set_cursor(0, { row - 1, 4 })
    vim.cmd('GhostlineExplain')
    log('explain requested')
    local st = wait_for('the explanation', function()
      local s = explain.state()
      if s.error then error('explain failed: ' .. s.error, 0) end
      return s.done and s.text ~= '' and s
    end, 300000)
    log(('explanation (%d chars): %s'):format(#st.text, vim.inspect(st.text:sub(1, 300))))
    if not (st.win and api.nvim_win_is_valid(st.win)) then error('the explanation window is not open', 0) end
    local shown_text = table.concat(api.nvim_buf_get_lines(api.nvim_win_get_buf(st.win), 0, -1, false), '\n')
    if shown_text:sub(1, 40) ~= st.text:sub(1, 40) then error('the window does not show the explanation', 0) end
  end
  finish(true)
end

local limit = tonumber(vim.env.E2E_TIMEOUT_S or '480') * 1000
vim.defer_fn(function() finish(false, ('overall time limit of %d s'):format(limit / 1000)) end, limit)
co = coroutine.create(function()
  local ok, err = pcall(main)
  if not ok then finish(false, err) end
end)
vim.schedule(function() coroutine.resume(co) end)
