# plugin-ratelimit: the shared Redis client (see mk/plugin-greylist.mk;
# the two definitions below repeat it whichever file make reads first).
REDIS_CLIENT_OBJ ?= $(BUILD)/obj/plugins/redis/client.o
REDIS_CLIENT_LIBS ?= -lhiredis -lnettle
$(BUILD)/lib/plugin-ratelimit.so: $(REDIS_CLIENT_OBJ)
plugin-ratelimit_LIBS = $(REDIS_CLIENT_LIBS)
# Included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
