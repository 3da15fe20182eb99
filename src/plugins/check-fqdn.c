/* plugin-check-fqdn -- requires fully qualified sender and recipient
 * domains, optionally completing them (plugins.md "check-fqdn").
 *
 * Variables (session lookups): $DEFAULTHOST is appended as `@HOST` to an
 * address without a domain, $DEFAULTDOMAIN as `.DOMAIN` to a domain without
 * a dot, $SENDER_DOMAINS (colon-separated) restricts sender domains
 * (exact, case-insensitive; no subdomains).  The address str is rewritten
 * in place; failures are static 554 responses, memory exhaustion resp_oom.
 * No state is kept between hooks: version 4 without a context (nothing
 * at file scope but constant replies), safe for many sessions in one
 * process. */
#include <mailfront/mailfront.h>
#include <string.h>
#include <strings.h>

static RESPONSE(no_domain, 554, "5.1.2 Address is missing a domain name");
static RESPONSE(no_fqdn, 554, "5.1.2 Address does not contain a fully qualified domain name");
static RESPONSE(empty_sender, 554, "5.1.2 Empty sender address prohibited");
static RESPONSE(bad_sender_domain, 554, "5.1.2 Sender contains a disallowed domain");
static RESPONSE(empty_rcpt, 554, "5.1.2 Recipient address may not be empty");

/* Complete and check one address.  defhost/defdom may be NULL (unset). */
static const response* fqdn_check(str* addr, const char* defhost, const char* defdom)
{
  int at = str_findlast(addr, '@');
  if (at <= 0) {
    if (!defhost) return &resp_no_domain;
    if (!str_catc(addr, '@') || !str_cats(addr, defhost)) return &resp_oom;
    at = str_findlast(addr, '@');
  }
  if (!memchr(addr->s + at + 1, '.', addr->len - at - 1)) {
    if (!defdom) return &resp_no_fqdn;
    if (!str_catc(addr, '.') || !str_cats(addr, defdom)) return &resp_oom;
  }
  return 0;
}

/* 1 if domain (len bytes) equals, ignoring case, an element of the
 * colon-separated list; empty elements never match. */
static int fqdn_in_list(const char* domain, size_t len, const char* list)
{
  while (*list) {
    const char* end = strchr(list, ':');
    size_t n = end ? (size_t)(end - list) : strlen(list);
    if (n > 0 && n == len && strncasecmp(list, domain, n) == 0) return 1;
    if (!end) break;
    list = end + 1;
  }
  return 0;
}

static const response* cf_sender(str* address, str* params)
{
  (void)params;
  if (address->len > 0) {
    const response* r = fqdn_check(address, session_getenv("DEFAULTHOST"), session_getenv("DEFAULTDOMAIN"));
    if (r) return r;
  }
  const char* domains = session_getenv("SENDER_DOMAINS");
  if (domains) {
    int at = str_findlast(address, '@');
    if (at < 0) return &resp_empty_sender;
    if (!fqdn_in_list(address->s + at + 1, address->len - at - 1, domains)) return &resp_bad_sender_domain;
  }
  return 0;
}

static const response* cf_recipient(str* address, str* params)
{
  (void)params;
  if (address->len == 0) return &resp_empty_rcpt;
  return fqdn_check(address, session_getenv("DEFAULTHOST"), session_getenv("DEFAULTDOMAIN"));
}

struct plugin plugin = {
  .version = PLUGIN_VERSION_4,
  .sender = cf_sender,
  .recipient = cf_recipient,
};
