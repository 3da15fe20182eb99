/* wire.h -- the Sendmail milter protocol (version 6, as Postfix speaks it):
 * constants, packet framing, and the parsers of what a milter sends.
 *
 * Pure functions over bytes: no I/O, no session, no mailfront hooks, so the
 * unit tests (tests/unit/milter_wire.c) drive them directly.
 *
 * Contract:
 *   mw_packet()      appends one packet (length, command, payload) to out.
 *   mw_cat0()        appends bytes and a NUL (the protocol's string form).
 *   mw_strings()     splits a payload into exactly n NUL-terminated strings;
 *                    0 ok, -1 malformed (missing NUL, too few or too many).
 *   mw_optneg()      parses the milter's SMFIC_OPTNEG answer, including the
 *                    version-6 macro lists; -1 when malformed or when it asks
 *                    for a version, action or step we did not offer.
 *   mw_replycode()   parses SMFIR_REPLYCODE text ("550 5.7.1 text", or the
 *                    multi-line "550-5.7.1 a\r\n550 5.7.1 b") into a reply
 *                    number and mailfront's multi-line text (lines joined by
 *                    '\n', codes removed); -1 when not a valid 4xx/5xx reply.
 *   mw_spec_parse()  one milter address: inet:HOST:PORT, inet6:[ADDR]:PORT,
 *                    inet:[ADDR]:PORT, unix:PATH or local:PATH; -1 if bad.
 *   mw_list_next()   the next $MILTERS item from *pos (NUL separates too,
 *                    so items may be cut out in place): an address, or
 *                    Postfix's "{ address, name=value, ... }"; 1 item,
 *                    0 end of list, -1 malformed (unclosed brace).
 *   mw_option_next() the next name=value of an item's options; 1, 0 at
 *                    the end, -1 malformed (no '=').
 *   mw_time()        a Postfix time value (number, unit s, m or h;
 *                    seconds by default) in seconds; -1 if bad.
 * Strings written belong to the caller (str); nothing else is allocated. */
#ifndef MF_MILTER_WIRE_H
#define MF_MILTER_WIRE_H

#include <mailfront/str.h>

/* Commands (MTA -> milter). */
enum {
  SMFIC_ABORT = 'A', SMFIC_BODY = 'B', SMFIC_CONNECT = 'C', SMFIC_MACRO = 'D',
  SMFIC_BODYEOB = 'E', SMFIC_HELO = 'H', SMFIC_QUIT_NC = 'K', SMFIC_HEADER = 'L',
  SMFIC_MAIL = 'M', SMFIC_EOH = 'N', SMFIC_OPTNEG = 'O', SMFIC_QUIT = 'Q',
  SMFIC_RCPT = 'R', SMFIC_DATA = 'T', SMFIC_UNKNOWN = 'U'
};

/* Replies and modifications (milter -> MTA). */
enum {
  SMFIR_ADDRCPT = '+', SMFIR_DELRCPT = '-', SMFIR_ADDRCPT_PAR = '2', SMFIR_SHUTDOWN = '4',
  SMFIR_ACCEPT = 'a', SMFIR_REPLBODY = 'b', SMFIR_CONTINUE = 'c', SMFIR_DISCARD = 'd',
  SMFIR_CHGFROM = 'e', SMFIR_CONN_FAIL = 'f', SMFIR_ADDHEADER = 'h', SMFIR_INSHEADER = 'i',
  SMFIR_SETSYMLIST = 'l', SMFIR_CHGHEADER = 'm', SMFIR_PROGRESS = 'p', SMFIR_QUARANTINE = 'q',
  SMFIR_REJECT = 'r', SMFIR_SKIP = 's', SMFIR_TEMPFAIL = 't', SMFIR_REPLYCODE = 'y'
};

/* Actions a milter may take (SMFIF_*). */
#define SMFIF_ADDHDRS     0x001u
#define SMFIF_CHGBODY     0x002u
#define SMFIF_ADDRCPT     0x004u
#define SMFIF_DELRCPT     0x008u
#define SMFIF_CHGHDRS     0x010u
#define SMFIF_QUARANTINE  0x020u
#define SMFIF_CHGFROM     0x040u
#define SMFIF_ADDRCPT_PAR 0x080u
#define SMFIF_SETSYMLIST  0x100u
#define MW_ACTIONS        0x1ffu   /* every action is offered */

/* Protocol steps (SMFIP_*). */
#define SMFIP_NOCONNECT   0x000001u
#define SMFIP_NOHELO      0x000002u
#define SMFIP_NOMAIL      0x000004u
#define SMFIP_NORCPT      0x000008u
#define SMFIP_NOBODY      0x000010u
#define SMFIP_NOHDRS      0x000020u
#define SMFIP_NOEOH       0x000040u
#define SMFIP_NR_HDR      0x000080u
#define SMFIP_NOUNKNOWN   0x000100u
#define SMFIP_NODATA      0x000200u
#define SMFIP_SKIP        0x000400u
#define SMFIP_RCPT_REJ    0x000800u
#define SMFIP_NR_CONN     0x001000u
#define SMFIP_NR_HELO     0x002000u
#define SMFIP_NR_MAIL     0x004000u
#define SMFIP_NR_RCPT     0x008000u
#define SMFIP_NR_DATA     0x010000u
#define SMFIP_NR_UNKN     0x020000u
#define SMFIP_NR_EOH      0x040000u
#define SMFIP_NR_BODY     0x080000u
#define SMFIP_HDR_LEADSPC 0x100000u
/* Offered: every step flag but RCPT_REJ (rejected recipients are not sent). */
#define MW_PROTOCOL       (0x1fffffu & ~SMFIP_RCPT_REJ)

#define MW_VERSION 6u
#define MW_BODY_CHUNK 65535u        /* body bytes per SMFIC_BODY packet */

/* Macro stages (SMFIM_*), the indices of the version-6 macro lists. */
enum mw_stage { MW_CONNECT, MW_HELO, MW_MAIL, MW_RCPT, MW_DATA, MW_EOM, MW_EOH, MW_NSTAGES };

struct mw_optneg
{
  unsigned version, actions, protocol;
  str symlist[MW_NSTAGES];          /* space-separated names; empty = default */
  int has_symlist[MW_NSTAGES];
};

int mw_packet(str* out, char cmd, const char* data, unsigned len);
int mw_cat0(str* out, const char* b, unsigned len);
int mw_strings(const char* data, unsigned len, unsigned n, const char** out, unsigned* lens);
int mw_optneg(const char* data, unsigned len, struct mw_optneg* o);
void mw_optneg_free(struct mw_optneg* o);
int mw_replycode(const char* data, unsigned len, unsigned* number, str* text);

enum mw_family { MW_INET, MW_INET6, MW_UNIX };
struct mw_spec
{
  enum mw_family family;
  str host;                 /* host or address (no brackets), or the path */
  unsigned port;
};
int mw_spec_parse(const char* item, unsigned len, struct mw_spec* spec);

struct mw_item
{
  const char* spec;
  unsigned speclen;
  const char* opts;         /* after the address, up to the closing brace */
  unsigned optslen;
};
int mw_list_next(const char* s, unsigned len, unsigned* pos, struct mw_item* it);
int mw_option_next(const char* opts, unsigned len, unsigned* pos, const char** name, unsigned* nl,
                   const char** value, unsigned* vl);
int mw_time(const char* v, unsigned len, unsigned long* seconds);

#endif
