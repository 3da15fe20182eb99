local x = nil
x()
