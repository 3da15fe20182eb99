/* addr.h -- socket addresses as mailfrontd shows and counts them.
 *
 * addr_ip() writes the text tcpserver puts in TCPREMOTEIP/TCPLOCALIP:
 * dotted quad for IPv4 and for IPv4-mapped IPv6 (a v4 client of a
 * dual-stack socket is a v4 client), compressed text for IPv6.
 * addr_key() reduces an address to the bytes -C counts by: the first
 * v4bits of an IPv4 address, the first v6bits of an IPv6 one.
 * No allocation; buffers are sized by the constants below. */
#ifndef MF_DAEMON_ADDR_H
#define MF_DAEMON_ADDR_H
#include <netinet/in.h>
#include <sys/socket.h>

#define ADDR_IP_MAX 46          /* INET6_ADDRSTRLEN */

struct addr_key { unsigned char family; unsigned char b[16]; };

/* "" when the family is neither inet nor inet6. */
void addr_ip(const struct sockaddr_storage* ss, char out[ADDR_IP_MAX]);
unsigned addr_port(const struct sockaddr_storage* ss);
void addr_key(const struct sockaddr_storage* ss, unsigned v4bits, unsigned v6bits, struct addr_key* k);
int addr_key_equal(const struct addr_key* a, const struct addr_key* b);

#endif
