ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: annotate chords",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine for the chords of the selected audio
region (the session's first audio region when none is selected, or when run headless),
recognised on its beat grid, and adds a range marker "SV♪ <chord>" over each chord (Harte
labels: C:maj, A:min, G:7; N.C. for no chord). Running it again replaces the chord markers it
wrote and leaves every other marker alone. Ardour 7's Lua cannot put marker edits in the undo
history: run it again to refresh them. Needs sonicverse_lib.lua beside it.]],
}

function factory () return function ()
  local dir = ARDOUR.LuaAPI.build_filename(ARDOUR.user_config_directory(-1), "scripts")
  local lib_path = os.getenv("SONICVERSE_ARDOUR_LIB")
    or ARDOUR.LuaAPI.build_filename(dir, "sonicverse_lib.lua")
  local sv = dofile(lib_path)
  local title = "SonicVerse: annotate chords"

  local t = sv.narrate_target(title)
  if not t then return end
  local target, rate, pos, start_s, len_s = t.region, t.rate, t.pos, t.start_s, t.len_s
  local ranges = sv.chord_ranges(t.result, start_s, start_s + len_s, pos)
  if #ranges == 0 then
    return sv.report(title, { target:name() .. ": the engine found no chords in it" })
  end
  sv.write_chords(ranges)
end end
