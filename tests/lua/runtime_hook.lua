function sender(address, params)
  if address == "idx@x.example" then
    local t = nil
    return t.field
  end
end
function recipient(address, params)
  return setnum("only-one")
end
return 0
