/* mailfront/constants.h -- character names shared by modules.
 * Part of the public plugin ABI; values never change. */
#ifndef MAILFRONT_CONSTANTS_H
#define MAILFRONT_CONSTANTS_H

#define AT '@'
#define CR ((char)13)
#define LF ((char)10)
#define SPACE ((char)32)
#define TAB ((char)9)
#define COLON ':'
#define LBRACE '<'
#define RBRACE '>'
#define PERIOD '.'
#define ESCAPE '\\'
#define QUOTE '"'

#endif
