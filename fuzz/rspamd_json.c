/* rspamd_json.c -- fuzzes the JSON reader of the rspamd plugin
 * (src/plugins/rspamd/json.c) and the lookups the plugin makes on a
 * reply: any text parses or is refused; every token lies inside the text;
 * members and strings are looked up without fault. */
#include "fuzz.h"
#include "plugins/rspamd/json.c"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  if (size > 1u << 20) return 0;
  char* b = fuzz_dup(data, size);
  struct json j;
  memset(&j, 0, sizeof j);
  if (json_parse(&j, b, (unsigned)size) == 0 && j.n > 0) {
    for (unsigned i = 0; i < j.n; i++) {
      FUZZ_ASSERT(j.t[i].start <= j.t[i].end && j.t[i].end <= size);
      FUZZ_ASSERT(j.t[i].after > i && j.t[i].after <= j.n);
    }
    static const char* const keys[] = { "action", "score", "required_score", "subject", "milter",
                                        "add_headers", "remove_headers", "messages", "smtp_message" };
    str s = { 0, 0, 0 };
    double d;
    for (unsigned k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      int m = json_member(&j, 0, keys[k]);
      if (m >= 0) {
        (void)json_string(&j, m, &s);
        (void)json_number(&j, m, &d);
      }
    }
    str_free(&s);
  }
  json_free(&j);
  free(b);
  return 0;
}
