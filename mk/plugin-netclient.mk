# plugin-netclient.mk -- the plugins that talk to a daemon link
# src/plugins/netclient.c (deadline-bounded sockets), which is not a
# module itself (SHARED_SRCS in the Makefile).
clamav_SHARED_SRCS       := src/plugins/netclient.c
spamassassin_SHARED_SRCS := src/plugins/netclient.c
rspamd_SHARED_SRCS       := src/plugins/netclient.c
milter_SHARED_SRCS       := src/plugins/netclient.c
