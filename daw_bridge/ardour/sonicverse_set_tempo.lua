ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: set tempo from analysis",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine for the beat grid of the selected audio
region (the session's first audio region when none is selected, or when run headless) and sets
the tempo map so that a bar at the analysed tempo and meter starts at the region's first
downbeat: a tempo and meter marker there, and a lead-in of whole beats before it (the tempo at
the session start is set so that they end on the downbeat). A range marker "SV: tempo ..."
shows where. Running it again replaces both. Ardour 7's Lua cannot put tempo map edits in the
undo history. Needs sonicverse_lib.lua beside it.]],
}

function factory () return function ()
  local dir = ARDOUR.LuaAPI.build_filename(ARDOUR.user_config_directory(-1), "scripts")
  local lib_path = os.getenv("SONICVERSE_ARDOUR_LIB")
    or ARDOUR.LuaAPI.build_filename(dir, "sonicverse_lib.lua")
  local sv = dofile(lib_path)
  local title = "SonicVerse: set tempo from analysis"

  local t = sv.narrate_target(title)
  if not t then return end
  local target, rate, pos, start_s, len_s = t.region, t.rate, t.pos, t.start_s, t.len_s
  local at, bpm, meter = sv.first_downbeat(t.result, start_s, start_s + len_s)
  if not at then
    return sv.report(title, { target:name() .. ": the engine found no downbeat in it" })
  end
  local at_s = pos + (at - start_s)
  local old_s
  for l in Session:locations():list():iter() do
    if l:name():sub(1, #sv.TEMPO_TAG) == sv.TEMPO_TAG then old_s = l:start():samples() / rate end
  end
  sv.set_tempo_map(at_s, bpm, meter, old_s)
  local doomed = {}
  for l in Session:locations():list():iter() do
    if l:name():sub(1, #sv.TEMPO_TAG) == sv.TEMPO_TAG then doomed[#doomed + 1] = l end
  end
  for _, l in ipairs(doomed) do Session:locations():remove(l) end
  local bar_s = 60 / bpm * (meter == "6/8" and 2 or tonumber(meter:match("^(%d+)")))
  local loc = Session:locations():add_range(Temporal.timepos_t(math.floor(at_s * rate + 0.5)),
                                            Temporal.timepos_t(math.floor((at_s + bar_s) * rate + 0.5)))
  loc:set_name(string.format("%s %.0f BPM %s", sv.TEMPO_TAG, bpm, meter))
end end
