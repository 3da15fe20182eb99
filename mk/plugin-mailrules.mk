plugin-mailrules_LIBS = -lcdb
mailrules_parse_LIBS = -lcdb
