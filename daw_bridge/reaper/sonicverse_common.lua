-- @noindex
-- SonicVerse for REAPER: shared code of the SonicVerse ReaScripts.
--
-- ReaScript Lua has no UDP socket, so the scripts run `sonicverse send <address> name=value ...`
-- through reaper.ExecProcess and decode the one JSON line it prints. Audio travels by
-- reference: the scripts render what is selected to a temporary folder through the project's
-- render settings (RENDER_SETTINGS / RENDER_BOUNDSFLAG / RENDER_FILE / RENDER_PATTERN, then
-- action 42230), restore those settings, and send the rendered file's path.
--
-- Settings (Extensions > ReaScript: set with the "configure" prompt, kept in REAPER's ExtState
-- section "SonicVerse"): command (default "sonicverse"), host, port, token.

local M = {}

M.SECTION = "SonicVerse"
M.TAG = "SV:"                       -- prefix of the take markers / project markers we own
M.NOTES_BEGIN = "[SonicVerse]"      -- our block in item / project notes
M.NOTES_END = "[/SonicVerse]"
M.WAV24 = "ZXZhdxgB"                -- RENDER_FORMAT for WAV, 24-bit ("evaw" 24 1, base64)
M.RENDER_ACTION = 42230             -- File: Render project, most recent settings, auto-close
M.AUDIO_EXTENSIONS = { ".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff" }

-- Addresses used by the scripts (declared in daw_bridge/protocol.py; a test checks them).
M.ANNOTATE = "/sonicverse/region/annotate"
M.NARRATE = "/sonicverse/track/narrate"
M.PING = "/sonicverse/engine/ping"

------------------------------------------------------------------------------------------
-- JSON (decode only: what `sonicverse send` prints)
------------------------------------------------------------------------------------------

local json_null = setmetatable({}, { __tostring = function() return "null" end })
M.null = json_null

local function json_error(s, i, what)
  error(string.format("bad JSON at %d: %s near %q", i, what, s:sub(i, i + 20)), 0)
end

local decode_value

local function skip(s, i)
  local _, e = s:find("^[ \t\r\n]*", i)
  return e + 1
end

local function utf8_char(cp)
  if utf8 and utf8.char then return utf8.char(cp) end
  return "?"
end

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then json_error(s, i, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
      if map[e] then out[#out + 1] = map[e]; j = j + 2
      elseif e == "u" then
        local cp = tonumber(s:sub(j + 2, j + 5), 16) or json_error(s, j, "bad \\u escape")
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
          local lo = tonumber(s:sub(j + 2, j + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8_char(cp)
      else out[#out + 1] = e; j = j + 2 end
    else
      local k = s:find('["\\]', j) or (#s + 1)
      out[#out + 1] = s:sub(j, k - 1)
      j = k
    end
  end
end

decode_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then json_error(s, i, "expected a key") end
      local key
      key, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then json_error(s, i, "expected ':'") end
      obj[key], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then json_error(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local arr = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      arr[#arr + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then json_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then return decode_string(s, i)
  elseif s:sub(i, i + 3) == "true" then return true, i + 4
  elseif s:sub(i, i + 4) == "false" then return false, i + 5
  elseif s:sub(i, i + 3) == "null" then return json_null, i + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" then json_error(s, i, "unexpected character") end
    return tonumber(num), i + #num
  end
end

function M.json_decode(s)
  local value, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then json_error(s, i, "trailing characters") end
  return value
end

-- JSON text of a list of {start_s, end_s, name} spans (the `regions` argument of narrate).
function M.json_spans(spans)
  local parts = {}
  for _, sp in ipairs(spans) do
    local name = sp[3]:gsub('[%c"\\]', function(ch)
      return string.format("\\u%04x", ch:byte())
    end)
    parts[#parts + 1] = string.format('[%.6f,%.6f,"%s"]', sp[1], sp[2], name)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

------------------------------------------------------------------------------------------
-- Settings and `sonicverse send`
------------------------------------------------------------------------------------------

function M.setting(key, default)
  local v = reaper.GetExtState(M.SECTION, key)
  if v == nil or v == "" then return default end
  return v
end

function M.configure()
  local ok, csv = reaper.GetUserInputs("SonicVerse engine", 4,
    "sonicverse command,host,port,token,extrawidth=200",
    table.concat({ M.setting("command", "sonicverse"), M.setting("host", "127.0.0.1"),
                   M.setting("port", "9000"), M.setting("token", "") }, ","))
  if not ok then return false end
  local fields, k = {}, 0
  for f in (csv .. ","):gmatch("([^,]*),") do k = k + 1; fields[k] = f end
  local keys = { "command", "host", "port", "token" }
  for n, key in ipairs(keys) do reaper.SetExtState(M.SECTION, key, fields[n] or "", true) end
  return true
end

local function is_windows()
  return reaper.GetOS():find("Win") ~= nil
end

function M.quote(s)
  s = tostring(s)
  if is_windows() then return '"' .. s:gsub('"', '\\"') .. '"' end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Run `sonicverse send address k=v ...`; returns the decoded reply table
-- ({ok=true, result=...} or {ok=false, code=..., message=...}).
function M.send(address, args, timeout_s)
  -- address and name=value pairs first, options after (argparse cannot intermix them)
  local parts = { M.setting("command", "sonicverse"), "send", M.quote(address) }
  local names = {}
  for k in pairs(args or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = M.quote(k .. "=" .. tostring(args[k])) end
  for _, opt in ipairs({ "--host", M.quote(M.setting("host", "127.0.0.1")),
                         "--port", M.quote(M.setting("port", "9000")),
                         "--timeout", tostring(timeout_s or 120) }) do
    parts[#parts + 1] = opt
  end
  local token = M.setting("token", "")
  if token ~= "" then parts[#parts + 1] = "--token"; parts[#parts + 1] = M.quote(token) end
  local cmd = table.concat(parts, " ")
  local out = reaper.ExecProcess(cmd, math.floor(((timeout_s or 120) + 10) * 1000))
  if not out then
    return { ok = false, code = "exec", message = "could not run: " .. cmd }
  end
  local status, text = out:match("^(%-?%d+)\n(.*)$")
  local line = (text or out):match("({.*})")
  if not line then
    return { ok = false, code = "exec",
             message = "no reply from `sonicverse send` (exit " .. tostring(status) .. "): "
                       .. (text or out) .. "\nIs the engine running? (sonicverse engine)" }
  end
  local okj, reply = pcall(M.json_decode, line)
  if not okj then return { ok = false, code = "exec", message = tostring(reply) } end
  return reply
end

function M.fail(reply)
  reaper.ShowMessageBox(string.format("%s: %s", tostring(reply.code), tostring(reply.message)),
                        "SonicVerse", 0)
end

------------------------------------------------------------------------------------------
-- Rendering through the project's render settings
------------------------------------------------------------------------------------------

local RENDER_KEYS_NUM = { "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS",
                          "RENDER_ENDPOS", "RENDER_ADDTOPROJ", "RENDER_TAILFLAG" }
local RENDER_KEYS_STR = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT" }

function M.save_render_settings()
  local saved = { num = {}, str = {} }
  for _, k in ipairs(RENDER_KEYS_NUM) do saved.num[k] = reaper.GetSetProjectInfo(0, k, 0, false) end
  for _, k in ipairs(RENDER_KEYS_STR) do
    local _, v = reaper.GetSetProjectInfo_String(0, k, "", false)
    saved.str[k] = v
  end
  return saved
end

function M.restore_render_settings(saved)
  for k, v in pairs(saved.num) do reaper.GetSetProjectInfo(0, k, v, true) end
  for k, v in pairs(saved.str) do reaper.GetSetProjectInfo_String(0, k, v, true) end
end

function M.temp_dir()
  local base = os.getenv("TMPDIR") or os.getenv("TEMP") or os.getenv("TMP") or "/tmp"
  local dir = base:gsub("[/\\]$", "") .. "/sonicverse"
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

local function find_rendered(dir, stem)
  for _, ext in ipairs(M.AUDIO_EXTENSIONS) do
    local p = dir .. "/" .. stem .. ext
    if reaper.file_exists(p) then return p end
  end
  return nil
end

-- Render with `source` (RENDER_SETTINGS: 0 master mix, 32 selected media items) and `bounds`
-- (RENDER_BOUNDSFLAG: 0 custom start_s/end_s, 4 selected items) to <temp>/<stem>.wav.
-- Returns the rendered file's path or nil, message.
function M.render(stem, source, bounds, start_s, end_s)
  local dir = M.temp_dir()
  for _, ext in ipairs(M.AUDIO_EXTENSIONS) do os.remove(dir .. "/" .. stem .. ext) end
  local saved = M.save_render_settings()
  reaper.GetSetProjectInfo(0, "RENDER_SETTINGS", source, true)
  reaper.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", bounds, true)
  if start_s then reaper.GetSetProjectInfo(0, "RENDER_STARTPOS", start_s, true) end
  if end_s then reaper.GetSetProjectInfo(0, "RENDER_ENDPOS", end_s, true) end
  reaper.GetSetProjectInfo(0, "RENDER_ADDTOPROJ", 0, true)
  reaper.GetSetProjectInfo(0, "RENDER_TAILFLAG", 0, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_FILE", dir, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_PATTERN", stem, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_FORMAT", M.WAV24, true)
  reaper.Main_OnCommand(M.RENDER_ACTION, 0)
  M.restore_render_settings(saved)
  local path = find_rendered(dir, stem)
  if not path then return nil, "rendering to " .. dir .. "/" .. stem .. " produced no file" end
  return path
end

------------------------------------------------------------------------------------------
-- Writing results back (idempotent: running twice leaves one copy)
------------------------------------------------------------------------------------------

-- True for a JSON value that is neither missing nor null.
function M.has(v)
  return v ~= nil and v ~= json_null
end

-- "A minor · female vocals · 124 BPM" from a RegionAnnotation dict.
function M.summary(ann)
  local bits = {}
  if ann.silent == true then return "silence" end
  if M.has(ann.key) then bits[#bits + 1] = ann.key.key end
  if M.has(ann.vocals) then
    bits[#bits + 1] = ann.vocals.label == "none" and "no vocals" or (ann.vocals.label .. " vocals")
  end
  if type(ann.tempo_bpm) == "number" then
    bits[#bits + 1] = string.format("%.0f BPM", ann.tempo_bpm)
  end
  return table.concat(bits, " · ")
end

-- Replace our [SonicVerse]...[/SonicVerse] block in `notes` with `body` (or append it).
function M.replace_block(notes, body)
  notes = notes or ""
  local block = M.NOTES_BEGIN .. "\n" .. body .. "\n" .. M.NOTES_END
  local b = notes:find(M.NOTES_BEGIN, 1, true)
  local _, e = notes:find(M.NOTES_END, 1, true)
  if b and e and e > b then return notes:sub(1, b - 1) .. block .. notes:sub(e + 1) end
  if notes ~= "" and not notes:match("\n$") then notes = notes .. "\n" end
  return notes .. block
end

-- Remove our " [SV ...]" suffix from a name, then add the new one.
function M.tag_name(name, text)
  local base = (name or ""):gsub("%s*%[SV [^%]]*%]$", "")
  if text == nil or text == "" then return base end
  return (base ~= "" and (base .. " ") or "") .. "[SV " .. text .. "]"
end

function M.clear_take_markers(take)
  for idx = reaper.GetNumTakeMarkers(take) - 1, 0, -1 do
    local _, name = reaper.GetTakeMarker(take, idx)
    if name and name:sub(1, #M.TAG) == M.TAG then reaper.DeleteTakeMarker(take, idx) end
  end
end

function M.clear_project_markers()
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = num_markers + num_regions - 1, 0, -1 do
    local _, isrgn, _, _, name, number = reaper.EnumProjectMarkers(idx)
    if not isrgn and name and name:sub(1, #M.TAG) == M.TAG then
      reaper.DeleteProjectMarker(0, number, false)
    end
  end
end

return M
