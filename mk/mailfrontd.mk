tcprules_lookup_LIBS = -lcdb
