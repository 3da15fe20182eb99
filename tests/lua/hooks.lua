-- Every hook: logs what it got; replies chosen by the input.
function reset() msg("reset") end
function helo(host, caps)
  msg("helo " .. host)
  if host == "bad.example" then return 554, "Go away" end
end
function sender(address, params)
  msg("sender <" .. address .. "> params=" .. params)
  if params == "SIZE=10\0BODY=8BITMIME" then msg("params raw ok") end
  if address == "reject@x.example" then return 553 end
  if address == "defer@x.example" then return 451 end
  if address == "ok@x.example" then return 250 end
  if address == "text@x.example" then return 250, "Sender fine" end
  if address == "num@x.example" then return "452", 12 end
  if address == "frac@x.example" then return 451.9, "frac" end
end
function recipient(address, params)
  msg("recipient <" .. address .. ">")
  if address == "no@x.example" then return 550, "5.1.1 No such user" end
  return 0, "ignored"
end
function data_start(fd) msg("data_start", fd) end
function data_block(bytes)
  msg("block " .. bytes)
  if bytes == "REJECTME\n" then return 554, "5.7.1 Content rejected" end
end
function message_end(fd)
  msg("message_end")
  if getstr("reject_end") then return 554, "end rejected" end
end
return 0
