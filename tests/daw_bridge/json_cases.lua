-- The same JSON cases for the Lua JSON helpers of every DAW folder.
-- usage: lua5.4 json_cases.lua <library.lua> [<locale>]; prints "ok <n>" or raises.
-- With a locale (e.g. de_DE.UTF-8) the numbers must still come out with a decimal point, as
-- REAPER and Ardour switch to the user's locale.

local lib_path, locale = arg[1], arg[2]
if locale then
  assert(os.setlocale(locale, "numeric"), "locale " .. locale .. " is not available")
  assert(string.format("%.1f", 0.5) == "0,5", "the locale does not write a decimal comma")
end
local sv = dofile(lib_path)
local n = 0
local function check(got, want, what)
  n = n + 1
  if got ~= want then error(string.format("%s: got %q, want %q", what, tostring(got), want), 2) end
end

check(sv.json_number(1.5), "1.5", "float")
check(sv.json_number(-0.25), "-0.25", "negative float")
check(sv.json_number(3), "3", "integer")
check(sv.json_number(2.0), "2", "integral float")
check(sv.json_number(1e300 * 1e10), "null", "infinity")
check(sv.json_number(0 / 0), "null", "nan")
check(sv.json_number(0.1), "0.10000000000000001", "round trip")
check(sv.json_object({ start_s = 1.5, end_s = 12, name = "Mike's \"best\"\n" }),
      '{"end_s":12,"name":"Mike\'s \\u0022best\\u0022\\u000a","start_s":1.5}', "object")

local doc = sv.json_decode('{"ok":true,"result":{"key":{"key":"A minor","confidence":0.75},'
  .. '"tempo_bpm":1.2e2,"tags":[{"label":"piano"},{"label":"na\\u00efve \\ud83c\\udfb9"}],'
  .. '"vocals":null,"silent":false}}')
check(doc.ok, true, "true")
check(doc.result.key.confidence, 0.75, "decimal point")
check(doc.result.tempo_bpm, 120.0, "exponent")
check(#doc.result.tags, 2, "array")
check(doc.result.tags[2].label, "naïve 🎹", "unicode escapes")
check(doc.result.vocals, sv.null, "null")
check(doc.result.silent, false, "false")
check(sv.json_decode(sv.json_object({ x = 0.1 })).x, 0.1, "encode then decode")
for _, bad in ipairs({ '{"a":1,}', '{"a" 1}', '[1 2]', '"open', '{"a":1} x' }) do
  n = n + 1
  assert(not pcall(sv.json_decode, bad), "accepted bad JSON " .. bad)
end
print("ok " .. n)
