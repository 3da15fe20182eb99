# exports.mk -- symbol hygiene (issue 10): our sources use our own str.h
# declarations (not an installed <bglibs/str.h>).
ALLCF += -DMAILFRONT_OWN_STR
# the differential str test dlopen()s Debian's libbg.so.2
str_bglibs_LIBS = -ldl
