/* check.c -- `pop3front-maildir --check [DEFAULT-MAILDIR]` (API:
 * auth/check.h): the maildir ($MAILBOX, else the argument, as the program
 * picks it) is a directory with cur/, new/ and tmp/ that the caller may
 * write, and the numeric settings are decimal numbers.  Run it as the
 * mailbox's user (after the authentication step, that is who runs it).
 * Lines and verdict through lib/confcheck.h. */
#include "auth/check.h"
#include "lib/confcheck.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char* const maildir_numbers[] = {
  "MAX_MESSAGES", "MAX_CUR_MESSAGES", "MAX_NEW_MESSAGES", "MAX_LINE_LENGTH", "TIMEOUT", "SESSION_TIMEOUT", 0
};
static const char* const maildir_subdirs[] = { "cur", "new", "tmp" };

int pop3front_maildir_check(int argc, char** argv)
{
  if (argc > 2) {
    fputs("usage: pop3front-maildir --check [default-maildir]\n", stderr);
    return 100;
  }
  struct confcheck c = { "pop3front-maildir --check", 0, 0 };
  const char* maildir = getenv("MAILBOX");
  const char* label = "$MAILBOX";
  if (!maildir && argc > 1) { maildir = argv[1]; label = "maildir"; }
  if (!maildir) confcheck_problem(&c, "maildir", "neither $MAILBOX nor an argument names it");
  else if (confcheck_dir(&c, label, maildir, 0) == 0) {
    for (size_t i = 0; i < sizeof maildir_subdirs / sizeof *maildir_subdirs; i++) {
      size_t n = strlen(maildir) + 5;
      char* sub = malloc(n);
      if (!sub) { confcheck_problem(&c, label, "out of memory"); break; }
      snprintf(sub, n, "%s/%s", maildir, maildir_subdirs[i]);
      confcheck_dir(&c, "maildir subdirectory", sub, 1);
      free(sub);
    }
  }
  confcheck_numbers(&c, maildir_numbers);
  return confcheck_verdict(&c);
}
