/* check.h -- `mailfront --check` (src/core/check.c). */
#ifndef MF_CHECK_H
#define MF_CHECK_H
/* argv[0] is "--check"; returns the exit status (0 OK, 1 problems, 100 usage). */
int check_main(int argc, char** argv);
#endif
