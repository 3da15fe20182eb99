# plugin-greylist and plugin-ratelimit share the Redis client of
# src/plugins/redis/ (hiredis, nettle's SHA-1 for EVALSHA): that directory
# is a library of theirs, not a plugin of its own.
PLUGINS := $(filter-out redis,$(PLUGINS))
REDIS_CLIENT_LIBS ?= -lhiredis -lnettle
greylist_SHARED_SRCS := src/plugins/redis/client.c
plugin-greylist_LIBS = $(REDIS_CLIENT_LIBS)
redis_client_LIBS = $(REDIS_CLIENT_LIBS)
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
