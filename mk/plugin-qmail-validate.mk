plugin-qmail-validate_LIBS = -lcdb
