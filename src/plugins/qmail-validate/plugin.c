/* plugin-qmail-validate -- qmail's envelope checks from $QMAILHOME/control
 * (plugins.md "qmail-validate").
 *
 * init: chdir($QMAILHOME, session lookup, default the compiled-in qmail
 * home) -- a side effect the original has too; the directory of before
 * is put back at session_close --, then load control/badmailfrom,
 * control/rcpthosts, control/badrcptto (ctlfile.h) and open
 * control/morercpthosts.cdb (tinycdb) if present.  Any unreadable or
 * malformed file fails start-up with a 451 after logging file and line.
 * sender: badmailfrom (address or @domain) -> 553, else accept.
 * recipient: badrcptto -> 553; domain or a dot-suffix of it in rcpthosts
 * or morercpthosts.cdb -> accept; else pass.
 * $QMAILVALIDATE_MAXBYTES bounds each control file (default 64 MiB).
 * State: version 4; the sets, the cdb (and its fd) and the directory to
 * return to are the session's context (session_open/session_close,
 * which releases all of them), so one process may run many sessions and
 * each reads the control files as they are when it starts. */
#include "lib/setting.h"
#include <mailfront/mailfront.h>
#include "ctlfile.h"
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QMAIL_HOME
#define QMAIL_HOME "/var/qmail"
#endif
#define DEFAULT_MAXBYTES (64UL << 20)

static RESPONSE(no_chdir, 451, "4.3.0 Could not change to the qmail directory.");
static RESPONSE(ctl_error, 451, "4.3.0 Could not read the qmail control files.");
static RESPONSE(cdb_error, 451, "4.3.0 Could not read control/morercpthosts.cdb.");
static RESPONSE(badmailfrom, 553, "5.1.0 Sorry, your envelope sender is in my badmailfrom list.");
static RESPONSE(badrcptto, 553, "5.1.1 Sorry, that address is in my badrcptto list.");
static RESPONSE(accept, 250, 0);

struct qmailval
{
  struct ctlset badmailfrom, rcpthosts, badrcptto;
  struct cdb more;
  int more_open;
  int cwd;                      /* the directory before init's chdir, or -1 */
  str key;                      /* lower-cased lookup key */
};

extern struct plugin plugin;

static const response* qv_open(void** ctx)
{
  struct qmailval* qv = calloc(1, sizeof *qv);
  if (!qv) return &resp_oom;
  qv->cwd = -1;
  *ctx = qv;
  return 0;
}

static void qv_close(void* ctx)
{
  struct qmailval* qv = ctx;
  if (!qv) return;
  if (qv->more_open) {
    int fd = cdb_fileno(&qv->more);
    cdb_free(&qv->more);
    close(fd);
  }
  qmailval_free(&qv->badmailfrom);
  qmailval_free(&qv->rcpthosts);
  qmailval_free(&qv->badrcptto);
  str_free(&qv->key);
  if (qv->cwd >= 0) {
    if (fchdir(qv->cwd) != 0) warn2("qmail-validate: cannot return to the previous directory: ", strerror(errno));
    close(qv->cwd);
  }
  free(qv);
}

#ifndef O_PATH
#define O_PATH O_RDONLY
#endif

static const char* const MORE_CDB = "control/morercpthosts.cdb";

static const response* qv_init(void)
{
  struct qmailval* qv = plugin_context(&plugin);
  if (!qv) return &resp_internal;
  const char* home = session_getenv("QMAILHOME");
  if (!home) home = QMAIL_HOME;
  if (qv->cwd < 0 && (qv->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
    warn2("qmail-validate: cannot remember the current directory: ", strerror(errno));
  if (chdir(home) != 0) return &resp_no_chdir;
  static const struct env_number maxbytes_spec = { DEFAULT_MAXBYTES, 1, ~0UL, 0 };
  unsigned long maxbytes = env_setting("QMAILVALIDATE_MAXBYTES", &maxbytes_spec);
  str err = { 0, 0, 0 };
  struct { struct ctlset* set; const char* path; } files[] = {
    { &qv->badmailfrom, "control/badmailfrom" },
    { &qv->rcpthosts, "control/rcpthosts" },
    { &qv->badrcptto, "control/badrcptto" },
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    if (qmailval_load(files[i].set, files[i].path, maxbytes, &err) < 0) {
      warn2("qmail-validate: ", err.s ? err.s : files[i].path);
      str_free(&err);
      return &resp_ctl_error;
    }
  str_free(&err);
  int fd = open(MORE_CDB, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno != ENOENT) {
    warn2("qmail-validate: control/morercpthosts.cdb: ", strerror(errno));
    return &resp_cdb_error;
  }
  if (fd >= 0) {
    if (cdb_init(&qv->more, fd) != 0) {
      warn1("qmail-validate: control/morercpthosts.cdb: not a valid cdb file");
      close(fd);
      return &resp_cdb_error;
    }
    qv->more_open = 1;
  }
  return 0;
}

/* key := lower-cased copy of b[0..len). */
static int set_key(struct qmailval* qv, const char* b, unsigned len)
{
  if (!str_copyb(&qv->key, b, len)) return 0;
  str_lower(&qv->key);
  return 1;
}

/* Address itself or its @domain listed in set. */
static int listed(const struct qmailval* qv, const struct ctlset* set, const str* addr)
{
  if (!set->count) return 0;
  if (qmailval_contains(set, qv->key.s, qv->key.len)) return 1;
  int at = str_findlast(addr, '@');
  return at > 0 && qmailval_contains(set, qv->key.s + at, qv->key.len - at);
}

static const response* qv_sender(str* address, str* params)
{
  (void)params;
  struct qmailval* qv = plugin_context(&plugin);
  if (!qv) return &resp_internal;
  if (!set_key(qv, address->s ? address->s : "", address->len)) return &resp_oom;
  return listed(qv, &qv->badmailfrom, address) ? &resp_badmailfrom : &resp_accept;
}

/* 1 hit, 0 miss, -1 cdb read error. */
static int rcpthost(struct qmailval* qv, const char* d, unsigned len)
{
  if (qmailval_contains(&qv->rcpthosts, d, len)) return 1;
  if (!qv->more_open) return 0;
  int r = cdb_find(&qv->more, d, len);
  return r > 0 ? 1 : r < 0 ? -1 : 0;
}

static const response* qv_recipient(str* address, str* params)
{
  (void)params;
  struct qmailval* qv = plugin_context(&plugin);
  if (!qv) return &resp_internal;
  if (!set_key(qv, address->s ? address->s : "", address->len)) return &resp_oom;
  if (listed(qv, &qv->badrcptto, address)) return &resp_badrcptto;
  int at = str_findlast(&qv->key, '@');
  if (at < 0) return 0;
  const char* d = qv->key.s + at + 1;
  unsigned len = qv->key.len - at - 1;
  for (unsigned j = 0; j < len; j++) {
    if (j > 0 && d[j] != '.') continue;
    int r = rcpthost(qv, d + j, len - j);
    if (r < 0) {
      warn1("qmail-validate: control/morercpthosts.cdb: read error");
      return &resp_cdb_error;
    }
    if (r > 0) return &resp_accept;
  }
  return 0;
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .init = qv_init,
  .sender = qv_sender,
  .recipient = qv_recipient,
  .session_open = qv_open,
  .session_close = qv_close,
};
