/* qmail_control.c -- fuzzes qmail-validate's control file parser
 * (qmailval_parse in src/plugins/qmail-validate/ctlfile.c): any file
 * parses or is refused with a reason; every line of a parsed file that is
 * looked up afterwards answers without crashing. */
#include "fuzz.h"
#include "plugins/qmail-validate/ctlfile.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  char* text = fuzz_dup(data, size);
  struct ctlset set;
  memset(&set, 0, sizeof set);
  str err = { 0, 0, 0 };
  if (qmailval_parse(&set, "control/fuzz", text, size, &err) == 0) {
    const char* p = text;
    const char* end = text + size;
    while (p < end) {
      const char* nl = memchr(p, '\n', (size_t)(end - p));
      size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
      (void)qmailval_contains(&set, p, len);
      p += len + 1;
    }
  }
  qmailval_free(&set);
  str_free(&err);
  free(text);
  return 0;
}
