# Unit tests that include driver sources need the loader library.
core_plist_LIBS = -ldl
core_queuedir_LIBS = -ldl
