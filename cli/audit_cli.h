/*
 * `bordergate audit ...`: what its subcommands share (cli/cmd_audit.c the
 * dispatch, the option parser, report, blocked, verify and rebuild;
 * cli/audit_subject.c subject; cli/audit_volumes.c volumes). The audit/
 * modules keep the library functions; these files parse options, print and
 * choose exit codes: 0 done, 1 an error, 2 a usage error.
 */
#ifndef BG_AUDIT_CLI_H
#define BG_AUDIT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "audit/report.h"

/* A handler's answer: go on parsing; any other value is the exit status. */
#define BG_CLI_AUDIT_GO (-1)

/*
 * One option of a subcommand. NEED NULL: a flag. NEED set: the option takes
 * the next argument; when it is the last argument, STRICT prints
 * "bordergate audit CMD: NAME needs NEED" (exit 2), else the option counts
 * as unknown (the usage is printed).
 */
typedef struct {
    const char *name;
    int id; /* the subcommand's own code, given to its handler */
    const char *need;
    int strict;
} bg_cli_audit_opt_t;

/* "--help" (and "-h") need no entry: every subcommand prints its usage on
 * stdout and exits 0. */
typedef struct {
    const char *cmd;                /* "report": messages say "bordergate audit report: ..." */
    const bg_cli_audit_opt_t *opts; /* ends with a NULL name */
    void (*usage)(FILE *fp);
    /* An option ID (VALUE NULL for flags): BG_CLI_AUDIT_GO or an exit status. */
    int (*option)(void *ctx, int id, const char *value);
    /* An operand, in order: BG_CLI_AUDIT_GO or an exit status. */
    int (*operand)(void *ctx, const char *arg);
    /* An argument starting with '-' that is no option ("-" alone is an
     * operand unless DASH_IS_OPTION): NULL prints "unknown option" and the
     * usage on stderr, exit 2. */
    int (*unknown)(void *ctx, const char *arg);
    int dash_is_option;
} bg_cli_audit_cmd_t;

/*
 * Parse ARGV[1..ARGC) (ARGV[0] is the subcommand) against C's table, in
 * order, handing options and operands to C's handlers. Returns BG_CLI_AUDIT_GO
 * when every argument was taken, else the exit status to return.
 */
int bg_cli_audit_parse(const bg_cli_audit_cmd_t *c, int argc, char **argv, void *ctx);

/* `--from DATE` / `--to DATE` (OPT) of CMD into *FROM / *TO.
 * BG_CLI_AUDIT_GO, or 2 with the message printed. */
int bg_cli_audit_date(const char *cmd, const char *opt, const char *value, int64_t *from,
                      int64_t *to);

/* Print DOC (taken) as indented JSON on stdout. 0, or 1 when out of memory. */
int bg_cli_audit_json(json_t *doc);

/* The subcommands; ARGV[0] is the subcommand's name. */
int bg_cli_audit_subject(int argc, char **argv);
int bg_cli_audit_volumes(int argc, char **argv);

#endif
