/* commands.h - the subcommands of musicgen-tui; each lives in app/cmd_NAME.c
 * and returns the process exit status (0 ok, 1 runtime error, 2 usage error). */
#ifndef MG_COMMANDS_H
#define MG_COMMANDS_H

int cmd_tui(int argc, char **argv);       /* no subcommand: the interactive screen */
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
