/* spf/spf.h -- the parts of plugin-spf (plugin.c): libspf2's DNS layer
 * bound to $DNSCACHEIP/$DNSCACHEPORT with a deadline (dns.c) and the two
 * trace header fields (header.c).  Internal to plugin-spf. */
#ifndef MF_SPF_H
#define MF_SPF_H

#include <mailfront/mailfront.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

struct dnstxt_conf;

/* A DNS layer asking c's servers; each evaluation (after spf_dns_arm) may
 * spend at most timeout seconds in DNS, later lookups fail as TRY_AGAIN
 * (temperror).  NULL when out of memory; libspf2 frees it with its
 * server (destroy). */
SPF_dns_server_t* spf_dns_new(const struct dnstxt_conf* c, unsigned timeout);
void spf_dns_arm(SPF_dns_server_t* s);
/* 1 when a lookup of the last evaluation ran out of time. */
int spf_dns_timed_out(SPF_dns_server_t* s);

/* The facts a header records. */
struct spf_facts
{
  const char* result;        /* "pass", "fail", ... (RFC 7208 words) */
  const char* receiver;      /* our host name (authserv-id) */
  const char* ip;            /* client address */
  const char* from;          /* envelope sender, "" for the null sender */
  const char* helo;          /* HELO/EHLO name, may be "" */
  int helo_identity;         /* the HELO name was checked (null sender) */
};

/* Append "Received-SPF: ...\n" (RFC 7208 9.1) and
 * "Authentication-Results: ...\n" (RFC 8601) to out, folded, every peer
 * value quoted or reduced to safe characters.  0 when out of memory. */
int spf_received_header(str* out, const struct spf_facts* f);
int spf_authres_header(str* out, const struct spf_facts* f);

#endif
