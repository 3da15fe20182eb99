/* proxy.h -- parser of the HAProxy PROXY protocol header, versions 1
 * (text) and 2 (binary), as sent by a load balancer before the client's
 * first byte.
 *
 * proxy_parse() is a pure function over the bytes received so far (read
 * with MSG_PEEK, so nothing is consumed before the header is known to be
 * complete).  It never reads past `len`, allocates nothing and keeps no
 * state; the caller calls it again with more bytes while it returns
 * PROXY_MORE.  Errors are values: PROXY_BAD with a static reason.
 *
 * A complete header tells the caller how many bytes to consume
 * (r->header_len: for version 2 this includes TLVs that may not be in the
 * buffer yet: the caller drains them) and the client's and proxy's
 * addresses, or r->local = 1 when the header carries none the receiver
 * must use (v1 UNKNOWN, v2 LOCAL command, v2 UNSPEC/UNIX families): the
 * connection's own addresses then stand. */
#ifndef MF_DAEMON_PROXY_H
#define MF_DAEMON_PROXY_H
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_ACCEPT_V1 1u
#define PROXY_ACCEPT_V2 2u
#define PROXY_ACCEPT_ANY (PROXY_ACCEPT_V1 | PROXY_ACCEPT_V2)

/* The longest version 1 header (spec: 107 bytes with CRLF) and the bytes
 * of a version 2 header needed to know the addresses (16 fixed + the
 * largest address block, AF_UNIX 216). */
#define PROXY_V1_MAX 107u
#define PROXY_PEEK_MAX (16u + 216u)

enum proxy_status { PROXY_BAD = -1, PROXY_MORE = 0, PROXY_DONE = 1 };

struct proxy_result
{
  int version;                   /* 1 or 2 */
  int local;                     /* 1: keep the connection's own addresses */
  struct sockaddr_storage src;   /* the client (valid when !local) */
  struct sockaddr_storage dst;   /* the address it connected to */
  size_t header_len;             /* bytes the whole header occupies */
};

/* versions: PROXY_ACCEPT_V1, _V2 or both.  *why is set on PROXY_BAD. */
enum proxy_status proxy_parse(const unsigned char* b, size_t len, unsigned versions,
                              struct proxy_result* r, const char** why);

/* "v1", "v2", "any" -> PROXY_ACCEPT_*; 0 when unknown. */
unsigned proxy_versions(const char* name);

#endif
