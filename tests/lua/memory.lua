-- Grows a string without bound: stopped by $LUA_MAXMEM.
function sender(address, params)
  local s = "0123456789abcdef"
  for i = 1, 40 do s = s .. s end
  return 250, "unreachable"
end
return 0
