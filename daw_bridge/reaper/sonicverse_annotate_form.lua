-- @noindex
-- @description SonicVerse: annotate form (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV, asks the engine for the
--   track's form (sections on bar lines, with repeat labels and functions) and writes one
--   project region per section, named "Chorus 1 · A minor · 128 BPM" and coloured by its
--   repeat label (the same colour for material that returns). One undo step. Running it
--   again replaces the regions it wrote and leaves the others alone.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local FORM_KEY = "form_regions"  -- ProjExtState: the regions we wrote, "<start> <end> <name>\n"
local PALETTE = {                -- one colour per repeat label, in order of first appearance
  { 66, 135, 245 }, { 235, 110, 52 }, { 80, 180, 90 }, { 200, 70, 160 },
  { 230, 190, 40 }, { 60, 190, 200 }, { 150, 100, 220 }, { 160, 160, 160 },
}

local function title(s)
  return (s:gsub("^%l", string.upper))
end

-- The key of the region holding most of [a, b), nil when none has one.
local function key_between(result, a, b)
  local best, cover = nil, 0
  for _, r in ipairs(result.regions or {}) do
    local c = math.min(b, r.end_s) - math.max(a, r.start_s)
    if c > cover and type(r.key) == "table" and not r.silent then best, cover = r.key.key, c end
  end
  return best
end

local function tempo_between(result, a, b)
  local best, cover = nil, 0
  for _, span in ipairs(type(result.tempi) == "table" and result.tempi or {}) do
    local c = math.min(b, span.end_s) - math.max(a, span.start_s)
    if c > cover then best, cover = span.bpm, c end
  end
  if best == nil and type(result.tempo_bpm) == "number" then best = result.tempo_bpm end
  if best == nil then  -- no grid: the regions' (track-level) tempo
    for _, r in ipairs(result.regions or {}) do
      local c = math.min(b, r.end_s) - math.max(a, r.start_s)
      if c > cover and type(r.tempo_bpm) == "number" then best, cover = r.tempo_bpm, c end
    end
  end
  return best
end

-- The regions a narrate result's form asks for: { start, stop, name, label } in time order;
-- nil and a message when there is no form.
local function form_regions(result)
  local form = type(result.form) == "table" and result.form or {}
  if #form == 0 then
    return nil, "The engine found no form in the project's mix: nothing was written."
  end
  local count, out = {}, {}
  for _, s in ipairs(form) do
    local what = sv.has(s["function"]) and title(s["function"]) or ("Section " .. s.label)
    count[what] = (count[what] or 0) + 1
    local bits = { what .. " " .. count[what] }
    local key = key_between(result, s.start_s, s.end_s)
    if key then bits[#bits + 1] = key end
    local bpm = tempo_between(result, s.start_s, s.end_s)
    if bpm then bits[#bits + 1] = string.format("%.0f BPM", bpm) end
    out[#out + 1] = { start = s.start_s, stop = s.end_s, label = s.label,
                      name = table.concat(bits, " · ") }
  end
  return out
end

local function recorded()
  local _, text = reaper.GetProjExtState(0, sv.SECTION, FORM_KEY)
  local out = {}
  for a, b, name in (text or ""):gmatch("([^ \n]+) ([^ \n]+) ([^\n]*)\n") do
    out[#out + 1] = { start = tonumber(a), stop = tonumber(b), name = name }
  end
  return out
end

-- Delete the regions we wrote last time (told apart from the user's by their span and name,
-- kept in the project's ExtState), write `regions` and remember them. Inside an undo block.
local function write(regions)
  local ours = recorded()
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = num_markers + num_regions - 1, 0, -1 do
    local _, isrgn, pos, rgnend, name = reaper.EnumProjectMarkers3(0, idx)
    if isrgn then
      for _, m in ipairs(ours) do
        if m.start and m.stop and math.abs(pos - m.start) < 1e-3
           and math.abs(rgnend - m.stop) < 1e-3 and name == m.name then
          reaper.DeleteProjectMarkerByIndex(0, idx)
          break
        end
      end
    end
  end
  local colours, record = {}, {}
  for _, r in ipairs(regions) do
    if not colours[r.label] then
      local n = 0
      for _ in pairs(colours) do n = n + 1 end
      local c = PALETTE[n % #PALETTE + 1]
      colours[r.label] = reaper.ColorToNative(c[1], c[2], c[3]) | 0x1000000
    end
    reaper.AddProjectMarker2(0, true, r.start, r.stop, r.name, -1, colours[r.label])
    record[#record + 1] = sv.json_number(r.start) .. " " .. sv.json_number(r.stop) .. " "
                          .. r.name .. "\n"
  end
  reaper.SetProjExtState(0, sv.SECTION, FORM_KEY, table.concat(record))
end

local function main()
  sv.narrate_mix("SonicVerse: annotate form", "sv_form", "form", form_regions, write)
end

main()
