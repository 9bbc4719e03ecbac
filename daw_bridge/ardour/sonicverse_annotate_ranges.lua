ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: annotate ranges",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine for the key, vocals and tempo of each of
the session's range markers (the audio of the first audio track under the range), appends
"[SV <key> · <vocals> · <tempo>]" to the range's name and adds a range marker "SV: ..." over
it. Running it again replaces both. A range that fails is reported at the end, the others are
still annotated. Ardour stays responsive (a progress dialog offers Cancel). Ardour 7's Lua
cannot put marker edits in the undo history: run it again to refresh them. Needs
sonicverse_lib.lua beside it.]],
}

function factory () return function ()
  local dir = ARDOUR.LuaAPI.build_filename(ARDOUR.user_config_directory(-1), "scripts")
  local lib_path = os.getenv("SONICVERSE_ARDOUR_LIB")
    or ARDOUR.LuaAPI.build_filename(dir, "sonicverse_lib.lua")
  local sv = dofile(lib_path)
  local rate = Session:nominal_sample_rate()
  local regions = sv.all_regions()

  local ranges = {}
  for l in Session:locations():list():iter() do
    if l:is_range_marker() and not sv.ours(l) then ranges[#ranges + 1] = l end
  end
  local dialog = sv.progress_dialog("SonicVerse: annotate ranges")
  local errors = {}
  for i, l in ipairs(ranges) do
    local from_s, to_s = l:start():samples() / rate, l:_end():samples() / rate
    local label, found, stop_all = l:name(), false, false
    for _, r in ipairs(regions) do
      local pos = r.region:position():samples() / rate
      local stop = pos + r.region:length():samples() / rate
      if pos < to_s and stop > from_s then
        local ann, err = sv.annotate_region(r.region, r.track, from_s, to_s,
                                            sv.ticker(dialog, i, #ranges, label))
        if ann then
          local text = sv.summary(ann)
          l:set_name(sv.tag_name(l:name(), text))
          sv.mark(from_s, to_s, text)
          found = true
          break
        elseif err.code == "cancelled" then
          stop_all = true
          break
        elseif err.code ~= "skip" then
          errors[#errors + 1] = string.format("%s: %s: %s", label, tostring(err.code),
                                              tostring(err.message))
          found = true
          break
        end
      end
    end
    if stop_all then break end
    if not found then errors[#errors + 1] = label .. ": no audio region under the range" end
  end
  if dialog then dialog:done() end
  sv.report("SonicVerse: annotate ranges", errors)
end end
