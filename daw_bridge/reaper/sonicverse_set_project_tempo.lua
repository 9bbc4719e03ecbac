-- @noindex
-- @description SonicVerse: set project tempo from analysis (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV, asks the engine for its beat
--   grid and writes a tempo/time signature marker at the first downbeat (the analysed tempo
--   and meter), plus one at the start of each further stretch of steady tempo. One undo step.
--   Running it again replaces the markers it wrote and leaves the others alone. Tempo is in
--   quarter notes per minute (a 6/8 grid's dotted-quarter beat counts 1.5 quarters).
--   Items and markers whose timebase is beats follow the new tempo; set the project's
--   timebase to Time first to keep them where they are.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function main()
  sv.narrate_mix("SonicVerse: set project tempo", "sv_tempo", "beat grid", sv.tempo_markers, sv.write_tempo_markers)
end

main()
