-- Never returns: stopped by the session deadline.
function sender(address, params)
  while true do end
end
return 0
