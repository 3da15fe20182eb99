/* match.c -- evaluates mail rule patterns and walks a rule list
 * (mailrules.md "Patterns", "Evaluation").
 *
 * Public: addr_set, pattern_match, rules_walk.  Addresses are matched
 * lower-cased (the caller lower-cases; patterns were lower-cased by the
 * parser).  List lookups: text lists through the hash set, cdb lists with
 * tinycdb's cdb_find on the memory-mapped file (O(1), no heap).  Nothing
 * here allocates, logs or touches the session. */
#include "rules.h"
#include "glob.h"
#include <string.h>

void addr_set(struct addr* a, const char* s, size_t len)
{
  a->s = s;
  a->len = len;
  const char* at = len ? memrchr(s, '@', len) : 0;
  a->domain = at ? at + 1 : 0;
  a->dlen = at ? len - (size_t)(at + 1 - s) : 0;
}

static int list_has(const struct listfile* l, const char* key, size_t klen)
{
  if (l->is_cdb) {
    if (klen > 0xffffffffu) return 0;
    return cdb_find((struct cdb*)&l->cdb, key, (unsigned)klen) > 0;
  }
  return textset_has(&l->set, key, klen);
}

static int raw_match(const struct ruleset* rs, const struct pattern* p, const struct addr* a)
{
  const char* text = rs->arena.s + p->off;
  switch ((enum pat_kind)p->kind) {
  case PK_ANY: return 1;
  case PK_LITERAL: return p->len == a->len && memcmp(text, a->s, a->len) == 0;
  case PK_GLOB:
    if ((size_t)p->prefix + p->suffix > a->len
        || memcmp(text, a->s, p->prefix) != 0
        || memcmp(text + p->len - p->suffix, a->s + a->len - p->suffix, p->suffix) != 0)
      return 0;
    return glob_match(text, p->len, a->s, a->len);
  case PK_LIST_DOMAIN:
    return a->domain && list_has(&rs->lists[p->off], a->domain, a->dlen);
  case PK_LIST_ADDR: {
    const struct listfile* l = &rs->lists[p->off];
    if (list_has(l, a->s, a->len)) return 1;
    /* "@domain", which is the tail of the address from its last '@' */
    return a->domain && list_has(l, a->domain - 1, a->dlen + 1);
  }
  }
  return 0;
}

int pattern_match(const struct ruleset* rs, const struct pattern* p, const struct addr* a)
{
  return raw_match(rs, p, a) ^ p->negate;
}

static int rule_match(const struct ruleset* rs, const struct rule* r,
                      const struct addr* sender, const struct addr* recipient)
{
  if (!pattern_match(rs, &r->sender, sender)) return 0;
  return !recipient || pattern_match(rs, &r->recipient, recipient);
}

const struct rule* rules_walk(const struct ruleset* rs, const struct rulelist* list,
                              const struct addr* sender, const struct addr* recipient,
                              int (*fire)(const struct rule*, void*), void* ctx, int* stop)
{
  int and_ok = 1;
  *stop = 0;
  for (size_t i = 0; i < list->n; i++) {
    const struct rule* r = &list->v[i];
    if (r->code == '&') {
      and_ok = and_ok && rule_match(rs, r, sender, recipient);
      continue;
    }
    if (!and_ok || !rule_match(rs, r, sender, recipient)) {
      and_ok = 1;
      continue;
    }
    if (fire && (*stop = fire(r, ctx)) != 0) return r;
    if (r->code != 'n') return r;
  }
  return 0;
}
