/* maildir.h -- pop3front-maildir: the message list of one maildir.
 *
 * maildir_scan reads cur/ then new/ of the current directory (names
 * starting with '.' skipped, $MAX_* limits applied by the caller's
 * struct scan_limits), derives each message's size, UID and read flag
 * from its file name (stat(2) only when the name carries no size), and
 * sorts the list into POP3 numbering order.  maildir_commit applies a
 * session's changes (QUIT): DELE'd messages are unlinked, the others are
 * renamed into cur/ with the read flag added when they were read; then
 * files of tmp/ neither read nor written for 36 hours (what a killed
 * delivery left, per the Maildir specification) are removed.
 *
 * Ownership: a struct maildir owns its message array and one arena holding
 * every name; maildir_free releases both.  A failed scan leaves the old
 * list untouched.  Errors: scan returns -1 with errno; commit ignores
 * per-file errors (another session may have moved a file first), it never
 * replaces an existing file and never unlinks a message that was not DELE'd.
 *
 * The name helpers are pure and exported for the unit tests. */
#ifndef POP3_MAILDIR_H
#define POP3_MAILDIR_H

#include <stddef.h>
#include <mailfront/str.h>

#define MSG_UID_MAX 70

enum msg_dir { MSG_CUR = 0, MSG_NEW = 1 };

enum msg_flag
{
  MSG_DELETED = 1,     /* DELE'd in this session */
  MSG_READ = 2,        /* read flag in the name, or retrieved */
  MSG_HIDDEN = 4       /* stat failed: shown as deleted, never touched */
};

struct msg
{
  const char* name;    /* base file name, NUL-terminated, in the arena */
  unsigned long size;  /* octets reported by LIST/STAT */
  size_t off;          /* offset of name in the arena while scanning */
  unsigned short namelen;
  unsigned short uidlen;
  unsigned short numskip;  /* leading zeros of the leading number */
  unsigned short numlen;   /* digits of the leading number (0: none) */
  unsigned char dir;       /* enum msg_dir */
  unsigned char flags;     /* enum msg_flag */
};

struct maildir
{
  struct msg* msgs;
  unsigned long count;
  unsigned long alloc;
  str names;           /* arena: every name followed by a NUL */
};

struct scan_limits
{
  unsigned long max_total, max_cur, max_new;   /* 0 = no limit */
};

int maildir_scan(struct maildir* md, const struct scan_limits* lim);
void maildir_free(struct maildir* md);
void maildir_commit(const struct maildir* md);
/* "cur/NAME" or "new/NAME" of message m into path: 1 ok, 0 no memory. */
int maildir_path(str* path, const struct msg* m);

/* Name helpers (len = length of name, which need not be NUL-terminated
 * except for msg_name_size, whose number parsing may look one byte past a
 * field, as strtoul would, and stops at the ':' or NUL). */
unsigned long msg_name_size(const char* name, size_t len);
size_t msg_uid_len(const char* name, size_t len);
int msg_name_read(const char* name, size_t len);
/* Suffix to append when a read message is moved into cur/: "" (none),
 * ":2,S" or "S". */
const char* msg_read_suffix(const char* name, size_t len);
int msg_compare(const struct msg* a, const struct msg* b);
/* Fill namelen/uidlen/numskip/numlen/size-from-name/flags of m from name. */
void msg_parse_name(struct msg* m, const char* name, size_t len);

#endif
