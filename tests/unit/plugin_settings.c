/* Unit tests of the daemon clients' settings and reply helpers
 * (src/plugins/netclient.c: nc_read_cfg by lib/setting.h's rule, and
 * nc_content_length), with a fake session environment: defaults, the
 * alternative names, 0 and bad values, the bounds. */
#include "tap.h"
#include "../../src/plugins/netclient.c"
#include <stdlib.h>

/* The driver functions netclient.c and lib/setting.c use. */
static const char* names[8];
static const char* values[8];
static int nvars;
const char* session_getenv(const char* name)
{
  for (int i = 0; i < nvars; i++) if (strcmp(names[i], name) == 0) return values[i];
  return 0;
}
int session_expired(void) { return 0; }

static void set(const char* n, const char* v) { names[nvars] = n; values[nvars] = v; nvars++; }

static const struct nc_names sa = { "SPAMD_PORT", 0, "SPAMD_TIMEOUT", 0, "SPAMD_CONNECT_TIMEOUT", "SPAMD_SEND_TIMEOUT",
                                    "SPAMD_MAXSIZE" };
static const struct nc_names clam = { "CLAMAV_PORT", "CLAMD_PORT", "CLAMAV_TIMEOUT", "CLAMD_TIMEOUT",
                                      "CLAMAV_CONNECT_TIMEOUT", "CLAMAV_SEND_TIMEOUT", "CLAMAV_MAXSIZE" };
static const struct nc_names rs = { "RSPAMD_PORT", 0, "RSPAMD_TIMEOUT", 0, "RSPAMD_CONNECT_TIMEOUT", 0, "RSPAMD_MAXSIZE" };

static struct nc_cfg cfg(const struct nc_names* n, unsigned port, unsigned timeout)
{
  struct nc_cfg c;
  nc_read_cfg(&c, n, port, timeout);
  nvars = 0;
  return c;
}

static int clen(const char* line, long long want, int want_r)
{
  long long v = -5;
  int r = nc_content_length(line, strlen(line), &v);
  return r == want_r && (r != 1 || v == want);
}

int main(void)
{
  struct nc_cfg c = cfg(&sa, 783, 5000);
  CHECK(c.port == 783 && c.timeout == 5000 && c.connect_timeout == 5000 && c.send_timeout == 5000 && c.maxsize == 0,
        "unset: the documented defaults");
  set("SPAMD_PORT", "0"); set("SPAMD_TIMEOUT", "0"); set("SPAMD_MAXSIZE", "0");
  c = cfg(&sa, 783, 5000);
  CHECK(c.port == 783 && c.timeout == 5000 && c.maxsize == 0, "0: the default (MAXSIZE: 0 = no limit)");
  set("SPAMD_PORT", "70000"); set("SPAMD_TIMEOUT", "99999999999999999999999");
  c = cfg(&sa, 783, 5000);
  CHECK(c.port == 65535 && c.timeout == 0x7fffffffu, "too large: the largest");
  set("SPAMD_PORT", "x"); set("SPAMD_TIMEOUT", "-5"); set("SPAMD_MAXSIZE", "");
  c = cfg(&sa, 783, 5000);
  CHECK(c.port == 783 && c.timeout == 5000 && c.maxsize == 0, "no digits: the default");
  set("SPAMD_PORT", " 7830x"); set("SPAMD_TIMEOUT", "200"); set("SPAMD_SEND_TIMEOUT", "30"); set("SPAMD_MAXSIZE", "1000");
  c = cfg(&sa, 783, 5000);
  CHECK(c.port == 7830 && c.timeout == 200 && c.connect_timeout == 200 && c.send_timeout == 30 && c.maxsize == 1000,
        "leading blanks skipped, text after the digits ignored; connect defaults to the timeout");
  set("CLAMD_PORT", "1234"); set("CLAMD_TIMEOUT", "77");
  c = cfg(&clam, 3310, 5000);
  CHECK(c.port == 1234 && c.timeout == 77 && c.send_timeout == 77, "CLAMD_* when CLAMAV_* is unset");
  set("CLAMAV_PORT", "4321"); set("CLAMD_PORT", "1234");
  c = cfg(&clam, 3310, 5000);
  CHECK(c.port == 4321, "CLAMAV_PORT before CLAMD_PORT");
  set("RSPAMD_TIMEOUT", "900"); set("RSPAMD_SEND_TIMEOUT", "5");
  c = cfg(&rs, 11333, 20000);
  CHECK(c.port == 11333 && c.timeout == 900 && c.send_timeout == 900, "rspamd: no send timeout of its own");

  CHECK(clen("Content-length: 12", 12, 1), "Content-length value");
  CHECK(clen("CONTENT-LENGTH:  7 \t", 7, 1), "any case, blanks around the value");
  CHECK(clen("Content-length: 0", 0, 1), "zero length");
  CHECK(clen("Content-length: 1x", 0, -1) && clen("Content-length: -1", 0, -1) && clen("Content-length:", 0, -1),
        "malformed values refused");
  CHECK(clen("Content-length: 99999999999999999999", 0, -1), "too large refused");
  CHECK(clen("Content-type: text/plain", 0, 0) && clen("X: 1", 0, 0), "other headers ignored");
  return done();
}
