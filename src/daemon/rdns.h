/* rdns.h -- the PTR name of a client or local address for TCPREMOTEHOST
 * and TCPLOCALHOST (mailfrontd -h), bounded by a deadline.
 *
 * The query goes through glibc's resolver on a private state set up by
 * the shared DNS layer of plugin-rbl and plugin-spf (dnstxt_res_init:
 * $DNSCACHEIP/$DNSCACHEPORT or /etc/resolv.conf; two attempts of half
 * the deadline), so a server that never answers costs at most the
 * deadline.  As tcpserver does, the first PTR name is taken as it is,
 * without checking that it resolves back to the address; a name with
 * bytes other than letters, digits, '-', '_' and '.' is not used.
 * No allocation besides the resolver's; errors are values. */
#ifndef MF_DAEMON_RDNS_H
#define MF_DAEMON_RDNS_H
#include "plugins/rbl/dnstxt.h"
#include <stddef.h>
#include <sys/socket.h>

/* Settings from $DNSCACHEIP/$DNSCACHEPORT and a deadline in seconds;
 * -1 with err on a bad value. */
int rdns_configure(struct dnstxt_conf* c, unsigned long timeout_s, str* err);
/* 1 with the name in out (NUL-terminated), 0 no usable name, -1 failure
 * or deadline. */
int rdns_name(const struct dnstxt_conf* c, const struct sockaddr_storage* ss, char* out, size_t outlen);
/* The reverse name of ss ("4.3.2.1.in-addr.arpa", ip6.arpa nibbles) in
 * out (at least RDNS_QNAME_MAX bytes); 0, or -1 for another family. */
#define RDNS_QNAME_MAX 74
int rdns_qname(const struct sockaddr_storage* ss, char out[RDNS_QNAME_MAX]);
#endif
