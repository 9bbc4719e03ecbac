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

  local target
  if Editor then
    for region in Editor:get_selection().regions:regionlist():iter() do
      if not region:to_audioregion():isnil() then target = target or region end
    end
  end
  local id = target and target:to_stateful():id():to_s()
  local track = ""
  for _, r in ipairs(sv.all_regions()) do
    if id and r.region:to_stateful():id():to_s() == id then track = r.track end
    if not target then target, track = r.region, r.track end
  end
  if not target then return sv.report(title, { "no audio region in the session" }) end
  local paths = sv.channel_paths(target:to_audioregion())
  if not paths then return sv.report(title, { target:name() .. ": no file behind the region" }) end

  local rate = Session:nominal_sample_rate()
  local pos = target:position():samples() / rate
  local start_s = target:start():samples() / rate
  local len_s = target:length():samples() / rate
  local dialog = sv.progress_dialog(title)
  local args = { path = paths[1], track = track }
  if #paths > 1 then args.channels = { table.unpack(paths, 2) } end  -- a stereo region: both
  local reply = sv.send(sv.NARRATE, args, 600,
                        sv.ticker(dialog, 1, 1, target:name()))
  if dialog then dialog:done() end
  if not reply.ok then
    if reply.code == "cancelled" then return end
    return sv.report(title, { string.format("%s: %s: %s", target:name(), tostring(reply.code),
                                            tostring(reply.message)) })
  end
  local at, bpm, meter = sv.first_downbeat(reply.result, start_s, start_s + len_s)
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
