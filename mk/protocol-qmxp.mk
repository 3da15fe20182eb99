# protocol-qmxp.mk -- protocol-qmqp.so and protocol-qmtp.so both link
# src/protocols/qmxp.c (reply encoding, the session loop, the bounded
# envelope and streaming body readers), which is not a module itself
# (SHARED_SRCS in the Makefile).
qmqp_SHARED_SRCS := src/protocols/qmxp.c
qmtp_SHARED_SRCS := src/protocols/qmxp.c
