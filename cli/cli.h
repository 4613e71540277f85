/* Subcommands implemented in cli/ (the others live with their module). */
#ifndef BG_CLI_H
#define BG_CLI_H

/* bordergate geo lookup <ip-or-host>... [--config FILE] [--db FILE] [--json] */
int bg_cli_geo(int argc, char **argv);

/* bordergate scan [--config FILE] [--apply] [FILE|-] */
int bg_cli_scan(int argc, char **argv);
/* bordergate replay --config POLICY (--har FILE | --gor FILE) [...] (cli/cmd_replay.c) */
int bg_cli_replay(int argc, char **argv);
/* bordergate detokenize --key FILE TOKEN... */
int bg_cli_detokenize(int argc, char **argv);
/* bordergate probe [--timeout MS] URL: exit 0 on a 2xx answer (cli/cmd_probe.c) */
int bg_cli_probe(int argc, char **argv);

/* bordergate audit verify|report|subject|volumes|blocked|rebuild ...
 * (cli/cmd_audit.c); ARGV[0] is "audit". 0, 1 on errors, 2 usage. */
int bg_cli_audit(int argc, char **argv);

#endif
