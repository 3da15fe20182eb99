function sender(a, p)
  return 553, "unterminated
end
