-- No standard library: every one of these globals must be nil.
local names = { "string", "tostring", "print", "io", "os", "require", "load",
  "loadfile", "dofile", "pairs", "table", "math", "debug", "coroutine", "error", "pcall" }
local missing = 0
for i = 1, 16 do
  if _ENV[names[i]] == nil then missing = missing + 1 else msg("present " .. names[i]) end
end
msg("missing " .. missing)
return 0
