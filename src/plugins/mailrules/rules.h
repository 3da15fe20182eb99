/* rules.h -- the parsed form of a mail rules file (mailrules.md).
 *
 * parse.c turns a rules file into a struct ruleset; match.c walks it for a
 * sender or a recipient; plugin.c wires both to the hooks.  Memory: every
 * string of the file (patterns, responses, relay suffixes, environment
 * assignments) lives NUL-terminated in one growable arena and rules refer
 * to it by 32-bit offset, so a rule costs a few dozen bytes.  Text lists
 * are loaded into hash sets (one per distinct file name); cdb files stay
 * on disk and are memory-mapped by tinycdb (O(1) lookups, never read into
 * the heap).  ruleset_free releases everything.  Errors are values: the
 * parser returns an enum rules_error and fills in a description naming
 * the file and line. */
#ifndef MF_PLUGINS_MAILRULES_RULES_H
#define MF_PLUGINS_MAILRULES_RULES_H
#include <mailfront/mailfront.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <cdb.h>

enum pat_kind {
  PK_ANY,          /* exactly "*": matches everything */
  PK_LITERAL,      /* no wildcard: exact (lower-cased) comparison */
  PK_GLOB,         /* glob_match over the lower-cased address */
  PK_LIST_ADDR,    /* [[FILE]]: address, then @domain */
  PK_LIST_DOMAIN   /* [[@FILE]]: domain after the last @ */
};

struct pattern {
  uint32_t off;    /* arena offset of the text, or list index for lists */
  uint32_t len;
  uint16_t prefix; /* PK_GLOB: bytes before the first wildcard (a quick pre-check) */
  uint16_t suffix; /* PK_GLOB without sets: bytes after the last wildcard */
  uint8_t kind;    /* enum pat_kind */
  uint8_t negate;  /* odd number of leading '!' */
};

struct rule {
  struct pattern sender, recipient;
  uint64_t databytes;  /* 0: no change */
  uint32_t response;   /* arena offset of the reply text; 0 = none */
  uint32_t relay;      /* arena offset of the RELAYCLIENT suffix; 0 = none */
  uint32_t env;        /* arena offset of NUL-separated assignments ending in an empty one; 0 = none */
  char code;           /* k K d z p n & */
};

struct rulelist {
  struct rule* v;
  size_t n, cap;
};

/* A text list: open-addressing hash set of lower-cased entries. */
struct textset {
  uint32_t* slots;     /* arena offset + 1 of each entry, 0 = empty */
  size_t nslots, count;
  str arena;
};

struct listfile {
  char* name;
  int is_cdb;
  int fd;              /* cdb only */
  struct cdb cdb;      /* cdb only */
  struct textset set;  /* text only */
};

struct ruleset {
  struct rulelist sender, recipient;
  str arena;           /* offset 0 is the empty string */
  struct listfile* lists;
  size_t nlists, caplists;
};

enum rules_error {
  RULES_OK = 0,
  RULES_OPEN,          /* the rules file itself cannot be opened */
  RULES_SYNTAX,        /* bad selector or DATABYTES field */
  RULES_REFERENCED,    /* a list file cannot be opened */
  RULES_NOMEM
};

/* Parse the file at path into *rs (zeroed first).  On error *rs is freed
 * and `why` (if non-NULL) describes it as "PATH:LINE: text". */
enum rules_error ruleset_load(struct ruleset* rs, const char* path, str* why);
/* Parse from an open stream; name is used in messages. */
enum rules_error ruleset_parse(struct ruleset* rs, FILE* f, const char* name, str* why);
void ruleset_free(struct ruleset* rs);

/* Unescape field bytes b[0..len) into out (appending); see mailrules.md
 * "Escapes".  Returns 0 when memory is exhausted. */
int rules_unescape(str* out, const char* b, size_t len);

/* Hash-set membership of key (already lower-cased). */
int textset_has(const struct textset* t, const char* key, size_t klen);

/* Match context: the lower-cased address and its domain. */
struct addr {
  const char* s;
  size_t len;
  const char* domain;   /* after the last '@', NULL when there is none */
  size_t dlen;
};
void addr_set(struct addr* a, const char* s, size_t len);

/* 1 when pattern p matches a; lookup errors of a cdb count as no match. */
int pattern_match(const struct ruleset* rs, const struct pattern* p, const struct addr* a);

/* Walk list for (sender, recipient); recipient NULL for sender rules.
 * Returns the fired rule that ends the walk (code other than 'n'), or
 * NULL.  fire(rule, ctx) is called for every fired rule, 'n' included,
 * in order; a non-zero return from fire stops the walk and is stored in
 * *stop. */
const struct rule* rules_walk(const struct ruleset* rs, const struct rulelist* list,
                              const struct addr* sender, const struct addr* recipient,
                              int (*fire)(const struct rule*, void*), void* ctx, int* stop);

#endif
