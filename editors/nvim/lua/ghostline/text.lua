--- ghostline.text: pure string and position helpers (no Neovim state): LSP position
--- encodings ↔ byte columns, normalising an inline completion item against the line it
--- applies to, partial accepts (word, line) and the layout of the ghost text.
local M = {}

--- Number of `encoding` units ('utf-8' | 'utf-16' | 'utf-32') in the first `byte_col`
--- bytes of `line`.
function M.byte_to_units(line, byte_col, encoding)
  if encoding == 'utf-8' then return byte_col end
  local units, i = 0, 1
  while i <= byte_col and i <= #line do
    local c = line:byte(i)
    local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    if encoding == 'utf-16' and len == 4 then units = units + 2 else units = units + 1 end
    i = i + len
  end
  return units
end

--- Byte column of the position `units` (in `encoding`) on `line`, clamped to the line.
function M.units_to_byte(line, units, encoding)
  if encoding == 'utf-8' then return math.min(units, #line) end
  local count, i = 0, 1
  while i <= #line and count < units do
    local c = line:byte(i)
    local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    count = count + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    i = i + len
  end
  return i - 1
end

function M.split_lines(text)
  local out = {}
  local start = 1
  while true do
    local s = text:find('\n', start, true)
    if not s then
      out[#out + 1] = text:sub(start)
      return out
    end
    out[#out + 1] = text:sub(start, s - 1)
    start = s + 1
  end
end

local function item_text(item)
  local t = item.insertText
  if type(t) == 'string' then return t end
  if type(t) == 'table' and type(t.value) == 'string' then
    -- A snippet: show and insert its text without the placeholders' syntax.
    if t.kind == 'snippet' then
      return (t.value:gsub('%${%d+:([^}]*)}', '%1'):gsub('%$%d+', ''):gsub('\\(.)', '%1'))
    end
    return t.value
  end
  return nil
end

--- Normalises one `InlineCompletionItem` against the cursor.
--- ctx = { row = 0-based, col = byte column, line = the cursor line, encoding = ... }
--- Returns { ghost = text to show/insert at the cursor, replace = bytes right of the cursor
--- that acceptance replaces } or nil when the item cannot be shown as text after the cursor
--- (a range on other lines, or text that does not continue what is before the cursor).
function M.normalize_item(item, ctx)
  if type(item) ~= 'table' then return nil end
  local text = item_text(item)
  if not text or text == '' then return nil end
  local start_col, end_col = ctx.col, ctx.col
  local r = item.range
  if type(r) == 'table' and type(r.start) == 'table' and type(r['end']) == 'table' then
    if r.start.line ~= ctx.row or r['end'].line ~= ctx.row then return nil end
    start_col = M.units_to_byte(ctx.line, r.start.character, ctx.encoding)
    end_col = M.units_to_byte(ctx.line, r['end'].character, ctx.encoding)
    if start_col > ctx.col or end_col < ctx.col then return nil end
  end
  local already = ctx.line:sub(start_col + 1, ctx.col)
  if text:sub(1, #already) ~= already then return nil end
  local ghost = text:sub(#already + 1)
  if ghost == '' then return nil end
  return { ghost = ghost, replace = end_col - ctx.col }
end

--- The next word of `text`, as VS Code's "accept next word": leading white space (newlines
--- included) and then a run of word characters, or else a run of other non-blank characters.
function M.next_word(text)
  return text:match('^%s*[%w_]+') or text:match('^%s*[^%w_%s]+') or text:match('^%s+') or text
end

--- The next line of `text`: up to the end of the first line; when the text starts with a
--- line break, that break and the line after it.
function M.next_line(text)
  if text:sub(1, 1) == '\n' then
    local rest = text:sub(2)
    local nl = rest:find('\n', 1, true)
    return '\n' .. (nl and rest:sub(1, nl - 1) or rest)
  end
  local nl = text:find('\n', 1, true)
  return nl and text:sub(1, nl - 1) or text
end

--- After the user typed `typed` at the cursor: the rest of the suggestion, or nil when the
--- typed text does not follow it.
function M.advance(ghost, typed)
  if typed == '' then return ghost end
  if ghost:sub(1, #typed) ~= typed then return nil end
  local rest = ghost:sub(#typed + 1)
  if rest == '' then return nil end
  return rest
end

local function expand_tabs(s, ts)
  return (s:gsub('\t', string.rep(' ', ts)))
end

--- Extmark layout of a ghost text. `right` is the text right of the cursor that stays after
--- acceptance; `inline_ok` says whether this Neovim has `virt_text_pos = 'inline'` (0.10+).
--- Returns { virt_text, virt_text_pos, virt_lines }.
function M.layout(ghost, right, inline_ok, hl, tabstop)
  tabstop = tabstop or 8
  local lines = M.split_lines(ghost)
  local first = expand_tabs(lines[1], tabstop)
  local out = { virt_lines = {} }
  if inline_ok then
    out.virt_text_pos = 'inline'
    out.virt_text = { { first, hl } }
  else
    -- 'overlay' draws over the characters at the cursor, so redraw what was there after the
    -- suggestion (single line) or blank it (it moves to the last line).
    out.virt_text_pos = 'overlay'
    out.virt_text = { { first, hl } }
    if right ~= '' then
      if #lines == 1 then
        table.insert(out.virt_text, { expand_tabs(right, tabstop), 'Normal' })
      else
        table.insert(out.virt_text, { string.rep(' ', #expand_tabs(right, tabstop)), 'Normal' })
      end
    end
  end
  for i = 2, #lines do
    local chunks = { { expand_tabs(lines[i], tabstop), hl } }
    if i == #lines and right ~= '' and not inline_ok then
      table.insert(chunks, { expand_tabs(right, tabstop), 'Normal' })
    end
    table.insert(out.virt_lines, chunks)
  end
  return out
end

return M
