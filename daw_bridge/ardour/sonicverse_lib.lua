-- SonicVerse for Ardour (7 or later): shared code of the SonicVerse Ardour scripts (not an action itself).
--
-- Ardour's Lua has no UDP socket, so the scripts run `sonicverse send <address> --args-file
-- <json>` (io.popen; names travel in the JSON file, never through the shell) and decode the one
-- ASCII JSON line it prints. Audio travels by reference: a region's own source file plus its
-- bounds in that file, so nothing is rendered. The engine's address comes from
-- $SONICVERSE_HOST / $SONICVERSE_PORT / $SONICVERSE_TOKEN (read by `sonicverse send`), the
-- command from $SONICVERSE_COMMAND (default "sonicverse").

local M = {}

M.TAG = "SV:"                       -- prefix of the range markers we own
M.ANNOTATE = "/sonicverse/region/annotate"

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

-- JSON text of a flat table of strings and numbers.
local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(ch)
    return string.format("\\u%04x", ch:byte())
  end) .. '"'
end

function M.json_object(t)
  local names, parts = {}, {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = t[k]
    local text = type(v) == "number" and string.format("%.17g", v) or json_string(v)
    parts[#parts + 1] = json_string(k) .. ":" .. text
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run `sonicverse send address --args-file ...`; the decoded reply table.
function M.send(address, args, timeout_s)
  local args_file = os.tmpname()
  local f = assert(io.open(args_file, "wb"))
  f:write(M.json_object(args))
  f:close()
  local command = os.getenv("SONICVERSE_COMMAND") or "sonicverse"
  local cmd = table.concat({ shell_quote(command), "send", address, "--args-file",
                             shell_quote(args_file), "--timeout", tostring(timeout_s or 120) },
                           " ")
  local h = io.popen(cmd .. " 2>&1")
  local out = h and h:read("a") or ""
  if h then h:close() end
  os.remove(args_file)
  local line = out:match("({.*})")
  if not line then
    return { ok = false, code = "exec", message = "no reply from `" .. cmd .. "`: " .. out }
  end
  local okj, reply = pcall(M.json_decode, line)
  if not okj then return { ok = false, code = "exec", message = tostring(reply) } end
  return reply
end

function M.has(v)
  return v ~= nil and v ~= json_null
end

-- "A minor · female vocals · 124 BPM" from a RegionAnnotation dict.
function M.summary(ann)
  if ann.silent == true then return "silence" end
  local bits = {}
  if M.has(ann.key) then bits[#bits + 1] = ann.key.key end
  if M.has(ann.vocals) then
    bits[#bits + 1] = ann.vocals.label == "none" and "no vocals" or (ann.vocals.label .. " vocals")
  end
  if type(ann.tempo_bpm) == "number" then
    bits[#bits + 1] = string.format("%.0f BPM", ann.tempo_bpm)
  end
  return table.concat(bits, " · ")
end

-- Remove our " [SV ...]" suffix from a name, then add the new one.
function M.tag_name(name, text)
  local base = (name or ""):gsub("%s*%[SV [^%]]*%]$", "")
  if text == nil or text == "" then return base end
  return (base ~= "" and (base .. " ") or "") .. "[SV " .. text .. "]"
end

-- Annotate `region` (an ARDOUR.Region of an audio track) from its source file; returns the
-- annotation or nil, an error reply.
function M.annotate_region(region, track_name, from_s, to_s)
  local ar = region:to_audioregion()
  if ar:isnil() then return nil, { code = "skip", message = "not an audio region" } end
  local fs = ar:source(0):to_filesource()
  if fs:isnil() then return nil, { code = "skip", message = "no file behind the region" } end
  local rate = Session:nominal_sample_rate()
  local pos = region:position():samples() / rate
  local start_s = region:start():samples() / rate
  local len_s = region:length():samples() / rate
  from_s = math.max(from_s or pos, pos)
  to_s = math.min(to_s or (pos + len_s), pos + len_s)
  local reply = M.send(M.ANNOTATE, {
    path = fs:path(), start_s = start_s + (from_s - pos), end_s = start_s + (to_s - pos),
    track = track_name, name = M.tag_name(region:name(), nil),
  })
  if not reply.ok then return nil, reply end
  return reply.result
end

-- True for a location this library wrote.
function M.ours(location)
  return location:name():sub(1, #M.TAG) == M.TAG
end

-- Replace our "SV: ..." location starting in [from_s, to_s) by one over [from_s, to_s] saying
-- `text`. A range marker: Ardour's Lua cannot construct a plain marker (no Location
-- constructor is bound; Locations:add_range is).
function M.mark(from_s, to_s, text)
  local rate = Session:nominal_sample_rate()
  local doomed = {}
  for l in Session:locations():list():iter() do
    local at = l:start():samples() / rate
    if M.ours(l) and at >= from_s - 1e-3 and at < math.max(to_s, from_s + 1e-3) then
      doomed[#doomed + 1] = l
    end
  end
  for _, l in ipairs(doomed) do Session:locations():remove(l) end
  local loc = Session:locations():add_range(Temporal.timepos_t(math.floor(from_s * rate + 0.5)),
                                            Temporal.timepos_t(math.floor(to_s * rate + 0.5)))
  loc:set_name(M.TAG .. " " .. text)
end

-- The audio regions of the session: { region, track_name } for each, by track then position.
function M.all_regions()
  local out = {}
  for route in Session:get_routes():iter() do
    local track = route:to_track()
    if not track:isnil() and not track:to_audio_track():isnil() then
      for region in track:playlist():region_list():iter() do
        out[#out + 1] = { region = region, track = route:name() }
      end
    end
  end
  return out
end

return M
