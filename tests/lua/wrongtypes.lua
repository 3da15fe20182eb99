-- Wrong return types: non-numbers pass, non-string messages give the default text.
function sender(address, params)
  if address == "table@x.example" then return {}, "x" end
  if address == "msgtable@x.example" then return 550, {} end
  if address == "bool@x.example" then return true end
  if address == "big@x.example" then return 1234, "huge" end
  if address == "neg@x.example" then return -5 end
  if address == "badarg@x.example" then return getenv({}) end
  if address == "setenv@x.example" then return setenv("A", "B") end
end
return 0
