/*
 * postern-cli: one table of command groups (cli_main.c), one file per group.
 * A group gets argv from its own name on ("property", "global", "set",
 * "--name", ...) and returns the exit status: CLI_OK, CLI_ERR (message on
 * stderr naming the problem) or CLI_USAGE (usage text on stderr).
 */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

struct db;
struct props;

#define CLI_OK		0
#define CLI_ERR		1
#define CLI_USAGE	2

#define CLI_NODE_GW	1	/* == PROPS_NODE_GW */
#define CLI_NODE_PORTAL	2	/* == PROPS_NODE_PORTAL */

struct cli {
	const char	*conf_path;	/* -c, $POSTERN_CONF or the default */
	int		 node;		/* CLI_NODE_*, from the config's `node` */
	char		*dbpath;	/* the config's `database` */
	struct db	*db;		/* opened by cli_open() */
	struct props	*props;		/* on db, restricted to this node */
	struct config_t	*cfg;		/* the whole config file (libconfig) */
};

/*
 * Loads the config and opens the database (idempotent). Groups marked
 * `lazy` in the table call it themselves after parsing their options, so a
 * usage error is reported before the config is read; every other group
 * gets an open struct cli. Returns 0, or -1 after printing the error.
 */
int	cli_open(struct cli *);
/* Prints "postern-cli: " and the message to stderr; returns CLI_ERR. */
int	cli_err(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Prints "postern-cli: " + message (if any) and usage; returns CLI_USAGE. */
int	cli_usage(const char *usage, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* 1 when verb is one of the NULL-terminated verbs. */
int	cli_verb_ok(const char *verb, const char *const *verbs);
/* The usage error for getopt_long's ':' (missing value) or '?' (unknown
 * option) on the option named opt. */
int	cli_bad_option(const char *usage, int ch, const char *opt);
/* A string setting of the config (e.g. "keys_dir"), or NULL. */
const char *cli_conf_str(struct cli *, const char *path);
/* "internal-gw" or "external-portal" */
const char *cli_node_name(int node);

/* Command groups. */
int	cli_property(struct cli *, int argc, char **argv);
int	cli_domain(struct cli *, int argc, char **argv);
int	cli_policy(struct cli *, int argc, char **argv);
/* Groups of other modules (add their line to the table in cli_main.c). */
int	cli_cert(struct cli *, int argc, char **argv);
int	cli_crl(struct cli *, int argc, char **argv);
int	cli_key(struct cli *, int argc, char **argv);
int	cli_user(struct cli *, int argc, char **argv);
int	cli_mailbox(struct cli *, int argc, char **argv);
int	cli_stats(struct cli *, int argc, char **argv);
int	cli_cleanup(struct cli *, int argc, char **argv);
int	cli_tunnel(struct cli *, int argc, char **argv);
int	cli_storage(struct cli *, int argc, char **argv);
/* storage encrypt-existing (cli_storage_seal.c) */
int	cli_storage_encrypt_existing(struct cli *);

#endif
