# plugin-ratelimit: the shared Redis client (see mk/plugin-greylist.mk;
# the definition below repeats it whichever file make reads first).
REDIS_CLIENT_LIBS ?= -lhiredis -lnettle
ratelimit_SHARED_SRCS := src/plugins/redis/client.c
plugin-ratelimit_LIBS = $(REDIS_CLIENT_LIBS)
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
