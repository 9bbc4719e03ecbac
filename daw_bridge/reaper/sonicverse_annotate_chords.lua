-- @noindex
-- @description SonicVerse: annotate chords (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV, asks the engine for its chords
--   (recognised on the beat grid, in Harte syntax: C:maj, A:min, G:7, N.C. for no chord) and
--   writes one project marker "SV♪ <chord>" where each chord starts. One undo step. Running it
--   again replaces the chord markers it wrote and leaves every other marker alone.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function main()
  sv.narrate_mix("SonicVerse: annotate chords", "sv_chords", "chords", sv.chord_markers, sv.write_chord_markers)
end

main()
