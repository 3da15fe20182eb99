/* mailheaders.h -- header fields of a message that streams in, and their edits
 * (plugin-milter, plugin-rspamd).
 *
 * mh_scan splits a message that arrives in pieces into its header fields
 * and its body.  Complete fields go to the `header` callback (name, and the
 * raw text after the colon, continuation lines included), the end of the
 * header section to `eoh`, every body byte to `body` in the pieces it came
 * in.  A line that is neither a field nor a continuation, or a header
 * section larger than `max` bytes, ends the header section: that line and
 * everything after it is body (as Postfix does).  The fields' bytes are kept
 * (bounded by max) so that the edits can be applied at end of data.
 *
 * mh_list is the editable list of fields: loaded from a scan, changed by
 * mh_add / mh_insert / mh_change (change with an empty value deletes),
 * and written by mh_write together with the prefix the milter did not see
 * (bytes 0..base of the file) and the body: the original one from the file,
 * or a replacement body file.  mh_body_lf copies milter body bytes (CRLF
 * lines) into a file with LF lines, as the message file has them.
 *
 * Memory: the scan and the list own their strs; mh_*_free release them.
 * Errors: -1 (memory, I/O with errno, or a callback's failure). */
#ifndef MF_MAILHEADERS_H
#define MF_MAILHEADERS_H

#include <mailfront/str.h>
#include <sys/types.h>

struct mh_callbacks
{
  void* ctx;
  int (*header)(void* ctx, const char* name, unsigned namelen, const char* value, unsigned valuelen);
  int (*eoh)(void* ctx);
  int (*body)(void* ctx, const char* b, unsigned len);
};

struct mh_field { unsigned off, len, namelen, valoff; };   /* valoff: after the colon */

enum mh_state { MH_START, MH_CR, MH_LINE, MH_BODY };

struct mh_scan
{
  enum mh_state st;
  unsigned long max;              /* header section limit in bytes */
  str cur;                        /* the field being assembled */
  int cur_checked;                /* its first line was found to be a field */
  unsigned cur_namelen, cur_colon;
  str raw;                        /* complete fields, back to back */
  struct mh_field* f;
  unsigned n, cap;
  unsigned sep;                   /* blank line after the fields: 0, 1 (LF) or 2 (CRLF) */
  unsigned long long seen;        /* bytes fed so far */
  unsigned long long body_off;    /* where the body begins (valid in MH_BODY) */
};

void mh_scan_init(struct mh_scan* s, unsigned long max);
void mh_scan_free(struct mh_scan* s);
int mh_feed(struct mh_scan* s, const char* b, unsigned long len, const struct mh_callbacks* cb);
/* End of the message: completes the header section if still open. */
int mh_finish(struct mh_scan* s, const struct mh_callbacks* cb);

struct mh_hdr { str bytes; unsigned namelen; };
struct mh_list
{
  struct mh_hdr* h;
  unsigned n, cap;
  int changed;
};

void mh_list_free(struct mh_list* l);
int mh_list_load(struct mh_list* l, const struct mh_scan* s);
int mh_add(struct mh_list* l, const char* name, unsigned nl, const char* value, unsigned vl, int leadspc);
int mh_insert(struct mh_list* l, unsigned index, const char* name, unsigned nl, const char* value, unsigned vl,
              int leadspc);
int mh_change(struct mh_list* l, unsigned index, const char* name, unsigned nl, const char* value, unsigned vl,
              int leadspc);
/* Writes in[0..base), the fields, the separator and the body (bodyfd from
 * its start, or in[base + s->body_off ..]) to out. */
int mh_write(int out, int in, off_t base, const struct mh_scan* s, const struct mh_list* l, int bodyfd);
/* CRLF -> LF while copying to fd; *cr carries a CR across calls. */
int mh_body_lf(int fd, int* cr, const char* b, unsigned len);
int mh_body_lf_end(int fd, int* cr);

#endif
