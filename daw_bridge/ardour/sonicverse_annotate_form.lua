ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: annotate form",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine for the form of the selected audio region
(the session's first audio region when none is selected, or when run headless): its sections
on bar lines, with repeat labels and functions. Adds one range marker per section over it,
"SV: form Chorus 1 · A minor · 128 BPM". Running it again replaces the form's range markers
and leaves the others alone. Ardour 7's Lua cannot put marker edits in the undo history: run
it again to refresh them. Needs sonicverse_lib.lua beside it.]],
}

function factory () return function ()
  local dir = ARDOUR.LuaAPI.build_filename(ARDOUR.user_config_directory(-1), "scripts")
  local lib_path = os.getenv("SONICVERSE_ARDOUR_LIB")
    or ARDOUR.LuaAPI.build_filename(dir, "sonicverse_lib.lua")
  local sv = dofile(lib_path)
  local title = "SonicVerse: annotate form"

  local t = sv.narrate_target(title)
  if not t then return end
  local target, rate, pos, start_s, len_s = t.region, t.rate, t.pos, t.start_s, t.len_s
  local sections = sv.form_sections(t.result, start_s, start_s + len_s)
  if #sections == 0 then
    return sv.report(title, { target:name() .. ": the engine found no form in it" })
  end
  local doomed = {}
  for l in Session:locations():list():iter() do
    if l:name():sub(1, #sv.FORM_TAG) == sv.FORM_TAG then doomed[#doomed + 1] = l end
  end
  for _, l in ipairs(doomed) do Session:locations():remove(l) end
  for _, s in ipairs(sections) do
    local a, b = pos + (s.start - start_s), pos + (s.stop - start_s)
    local loc = Session:locations():add_range(Temporal.timepos_t(math.floor(a * rate + 0.5)),
                                              Temporal.timepos_t(math.floor(b * rate + 0.5)))
    loc:set_name(sv.FORM_TAG .. " " .. s.name)
  end
end end
