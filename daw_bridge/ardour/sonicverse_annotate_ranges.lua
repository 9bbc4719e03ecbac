ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: annotate ranges",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine for the key, vocals and tempo of each of
the session's range markers (the audio of the first audio track under the range), appends
"[SV <key> · <vocals> · <tempo>]" to the range's name and adds a range marker "SV: ..." over
it. Running it again replaces both. Needs sonicverse_lib.lua beside it.]],
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
  for _, l in ipairs(ranges) do
    local from_s, to_s = l:start():samples() / rate, l:_end():samples() / rate
    for _, r in ipairs(regions) do
      local pos = r.region:position():samples() / rate
      local stop = pos + r.region:length():samples() / rate
      if pos < to_s and stop > from_s then
        local ann, err = sv.annotate_region(r.region, r.track, from_s, to_s)
        if ann then
          local text = sv.summary(ann)
          l:set_name(sv.tag_name(l:name(), text))
          sv.mark(from_s, to_s, text)
          break
        elseif err.code ~= "skip" then
          print(string.format("SonicVerse: %s: %s", tostring(err.code), tostring(err.message)))
          return
        end
      end
    end
  end
end end
