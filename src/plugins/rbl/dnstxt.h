/* dnstxt.h -- bounded TXT lookups through glibc's resolver.
 *
 * The server is taken from $DNSCACHEIP (djbdns convention: one or more
 * IPv4 addresses separated by spaces or commas; unset = the servers of
 * /etc/resolv.conf), extension: $DNSCACHEPORT (default 53).  Each lookup
 * is bounded by a deadline in seconds (two attempts of half of it, at
 * least one second each).  Texts are returned printable: each record's
 * character-strings are concatenated and every byte outside 32..126
 * becomes '?'; records are separated by NUL bytes in `out`.
 * Errors are values: -1 with a one-line reason in `err`. */
#ifndef RBL_DNSTXT_H
#define RBL_DNSTXT_H

#include <mailfront/str.h>
#include <netinet/in.h>

#define DNSTXT_MAXSERVERS 3

struct dnstxt_conf
{
  struct sockaddr_in servers[DNSTXT_MAXSERVERS];
  int nservers;           /* 0: use /etc/resolv.conf */
  unsigned timeout;       /* seconds per lookup */
};

/* Parse settings; -1 with err on an invalid value. */
int dnstxt_configure(struct dnstxt_conf* c, const char* ips, const char* port,
                     unsigned long timeout, str* err);
/* 1 = listed (texts in out, count in *nrec), 0 = no such name / no TXT,
 * -1 = DNS failure or timeout (reason in err). */
int dnstxt_lookup(const struct dnstxt_conf* c, const char* name, str* out, unsigned* nrec, str* err);
/* Decode the TXT answers of a DNS message (exposed for unit tests);
 * returns the number of TXT records, -1 if the message is malformed (or
 * no memory).  On success out is NUL-terminated (out->s never NULL), its
 * records separated by NUL bytes; empty records give empty strings. */
int dnstxt_parse(const unsigned char* msg, int len, str* out);

#endif
