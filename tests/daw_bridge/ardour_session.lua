-- Headless Ardour (ardour7-lua): build a session from synthesized audio, run the SonicVerse
-- Ardour scripts on it, print what they wrote ("REGION\t<name>", "RANGE\t<s>\t<name>").
--
-- Ardour's Lua cannot import files without the editor, so each track gets its audio by bouncing
-- a Lua DSP "player" (ardour_player_<n>.lua, one per file, installed by the test in
-- $XDG_CONFIG_HOME/ardour7/scripts) through Track:bounce_range; the bounced region is placed on
-- the track's playlist. Environment: SV_SESSION (folder), SV_TRACKS ("name@seconds;..."),
-- SV_RANGES ("name@from-to;..."), SV_SCRIPTS (the scripts to run, ";"-separated), SV_BREAK (a
-- track whose audio file is deleted before the scripts run, so the engine answers an error),
-- SV_STEREO (";"-separated tracks made stereo: their regions have one source file a channel).
--
-- Like Ardour's GUI (and unlike bare ardour7-lua), the scripts run in the user's locale
-- (setlocale from LC_ALL / LANG) and have os.forkexec; here it is emulated with a detached
-- /bin/sh child, as Ardour's own starts a program without waiting for it.

io.stdout:setvbuf("no")
os.setlocale("")
print("LOCALE\t" .. string.format("%.1f", 0.5))
if not os.forkexec then
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  function os.forkexec(...)
    local argv = {}
    for i, a in ipairs({ ... }) do argv[i] = q(a) end
    os.execute(table.concat(argv, " ") .. " >/dev/null 2>&1 </dev/null &")
  end
end
local backend = AudioEngine:set_backend("None (Dummy)", "", "")
assert(backend and not backend:isnil(), "no dummy audio backend")
assert(AudioEngine:start(false) == 0, "the audio engine did not start")
local dir = os.getenv("SV_SESSION")
local s = assert(create_session(dir, "sv", 48000), "could not create a session in " .. dir)
local rate = s:nominal_sample_rate()

local stereo = {}
for name in (os.getenv("SV_STEREO") or ""):gmatch("[^;]+") do stereo[name] = true end
local n = 0
for name, at in os.getenv("SV_TRACKS"):gmatch("([^@;]+)@([%d.]+)") do
  n = n + 1
  local chans = stereo[name] and 2 or 1
  local track = s:new_audio_track(chans, chans, nil, 1, name, ARDOUR.PresentationInfo.max_order,
                                  ARDOUR.TrackMode.Normal, true):front()
  local player = ARDOUR.LuaAPI.new_luaproc(s, "SV player " .. n)
  assert(not player:isnil(), "player " .. n .. " not found")
  track:add_processor_by_index(player, 0, nil, true)
  local seconds = tonumber(os.getenv("SV_SECONDS_" .. n))
  local region = track:bounce_range(0, math.floor(seconds * rate), ARDOUR.InterThreadInfo(),
                                    player, true, name, false)
  assert(not region:isnil(), "bounce of " .. name .. " failed")
  print(string.format("CHANNELS\t%s\t%d", name, region:to_audioregion():n_channels()))
  track:remove_processor(player, nil, true)
  track:playlist():add_region(region, Temporal.timepos_t(math.floor(tonumber(at) * rate)),
                              1, false, 0, 0, false)
  if os.getenv("SV_BREAK") == name then
    os.remove(region:to_audioregion():source(0):to_filesource():path())
  end
end
for name, from, to in os.getenv("SV_RANGES"):gmatch("([^@;]+)@([%d.]+)-([%d.]+)") do
  local a = Temporal.timepos_t(math.floor(tonumber(from) * rate))
  local b = Temporal.timepos_t(math.floor(tonumber(to) * rate))
  s:locations():add_range(a, b):set_name(name)
end

function ardour () end   -- the scripts' descriptor, used by the GUI only
for path in os.getenv("SV_SCRIPTS"):gmatch("[^;]+") do
  dofile(path)
  factory()()
end
s:save_state("", false, false, false, false, false)

for route in s:get_routes():iter() do
  local track = route:to_track()
  if not track:isnil() then
    for region in track:playlist():region_list():iter() do print("REGION\t" .. region:name()) end
  end
end
for l in s:locations():list():iter() do
  if l:is_range_marker() then
    print(string.format("RANGE\t%d\t%s", math.floor(l:start():samples() / rate * 1000 + 0.5),
                        l:name()))
  end
end
