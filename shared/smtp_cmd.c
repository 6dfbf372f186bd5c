/*
 * SMTP/LMTP command line parser; see smtp_server.h. Table-driven: a verb
 * table says which arguments each command takes, one function per argument
 * shape (none, free text, domain, path with parameters, BDAT size).
 *
 * SECURITY: the line is peer input from any SMTP client that may connect
 * (the Internet-facing MTA for internal-gw, the gateway for the portal),
 * already cut at CRLF and bounded by the engine's max_line. Nothing is
 * copied without a length check; paths go through addr.h; an ESMTP
 * parameter outside the known few is refused (555) and SIZE must be a
 * plain decimal number; every refusal is a full SMTP reply.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "smtp_server.h"

enum smtp_cmd_args {
	SMTP_ARGS_NONE,		/* nothing may follow the verb */
	SMTP_ARGS_TEXT,		/* anything, optional (NOOP, HELP) */
	SMTP_ARGS_NEEDED,	/* anything, required (VRFY, XFORWARD) */
	SMTP_ARGS_DOMAIN,	/* HELO/EHLO/LHLO */
	SMTP_ARGS_MAIL,
	SMTP_ARGS_RCPT,
	SMTP_ARGS_BDAT,
};

static const struct smtp_cmd_verb {
	const char		*name;
	enum smtp_verb		 verb;
	enum smtp_cmd_args	 args;
} smtp_cmd_verbs[] = {
	{ "HELO",	SMTP_VERB_HELO,		SMTP_ARGS_DOMAIN },
	{ "EHLO",	SMTP_VERB_EHLO,		SMTP_ARGS_DOMAIN },
	{ "LHLO",	SMTP_VERB_LHLO,		SMTP_ARGS_DOMAIN },
	{ "MAIL",	SMTP_VERB_MAIL,		SMTP_ARGS_MAIL },
	{ "RCPT",	SMTP_VERB_RCPT,		SMTP_ARGS_RCPT },
	{ "DATA",	SMTP_VERB_DATA,		SMTP_ARGS_NONE },
	{ "BDAT",	SMTP_VERB_BDAT,		SMTP_ARGS_BDAT },
	{ "RSET",	SMTP_VERB_RSET,		SMTP_ARGS_NONE },
	{ "NOOP",	SMTP_VERB_NOOP,		SMTP_ARGS_TEXT },
	{ "QUIT",	SMTP_VERB_QUIT,		SMTP_ARGS_NONE },
	{ "VRFY",	SMTP_VERB_VRFY,		SMTP_ARGS_NEEDED },
	{ "HELP",	SMTP_VERB_HELP,		SMTP_ARGS_TEXT },
	{ "STARTTLS",	SMTP_VERB_STARTTLS,	SMTP_ARGS_NONE },
	{ "XFORWARD",	SMTP_VERB_XFORWARD,	SMTP_ARGS_NEEDED },
};

#define SMTP_CMD_FAIL(...) do {					\
	snprintf(reply, replylen, __VA_ARGS__);				\
	return -1;							\
} while (0)

static int
smtp_cmd_domain(const char *p, struct smtp_cmd *cmd, char *reply,
    size_t replylen, const char *verb)
{
	size_t n;

	for (n = 0; p[n] != '\0' && p[n] != ' '; n++)
		if ((unsigned char)p[n] < 0x21 || (unsigned char)p[n] > 0x7e)
			SMTP_CMD_FAIL("501 5.5.4 Syntax: %s hostname", verb);
	if (n == 0)
		SMTP_CMD_FAIL("501 5.5.4 Syntax: %s hostname", verb);
	if (n >= 256 || n >= sizeof(cmd->arg))
		SMTP_CMD_FAIL("501 5.5.4 %s hostname too long", verb);
	memcpy(cmd->arg, p, n);
	cmd->arg[n] = '\0';
	return 0;
}

/*
 * Extracts a path, with or without angle brackets, into cmd->path and
 * returns a pointer past it. Quoted local parts may contain '>' and spaces.
 * A source route (@a,@b:) is dropped as RFC 5321 section 4.1.2 allows.
 */
static const char *
smtp_cmd_path(const char *p, struct smtp_cmd *cmd)
{
	const char *start, *end;
	int angle = 0, quoted = 0;
	size_t n;

	if (*p == '<') {
		angle = 1;
		p++;
	}
	start = p;
	for (end = p; *end != '\0'; end++) {
		if (quoted) {
			if (*end == '\\' && end[1] != '\0')
				end++;
			else if (*end == '"')
				quoted = 0;
			continue;
		}
		if (*end == '"')
			quoted = 1;
		else if (angle && *end == '>')
			break;
		else if (*end == ' ' || *end == '<' || (!angle && *end == '>'))
			break;
	}
	if (quoted || (angle && *end != '>'))
		return NULL;
	if (*start == '@') {
		const char *colon = memchr(start, ':', end - start);

		if (colon == NULL)
			return NULL;
		start = colon + 1;
	}
	n = end - start;
	if (n >= sizeof(cmd->path))
		return NULL;
	memcpy(cmd->path, start, n);
	cmd->path[n] = '\0';
	if (!angle && n == 0)
		return NULL;
	return angle ? end + 1 : end;
}

/* One ESMTP parameter: keyword[=value], bounded by the next space. */
static int
smtp_cmd_param(const char *kw, size_t kwlen, const char *val, size_t vallen,
    int has_val, struct smtp_cmd *cmd, char *reply, size_t replylen)
{
	if (kwlen == 4 && strncasecmp(kw, "SIZE", 4) == 0 && has_val) {
		long long v = 0;

		if (cmd->size != -1 || vallen == 0 || vallen > 18)
			SMTP_CMD_FAIL("501 5.5.4 Bad SIZE parameter");
		for (size_t i = 0; i < vallen; i++) {
			if (!isdigit((unsigned char)val[i]))
				SMTP_CMD_FAIL("501 5.5.4 Bad SIZE parameter");
			v = v * 10 + (val[i] - '0');
		}
		cmd->size = v;
		return 0;
	}
	if (kwlen == 4 && strncasecmp(kw, "BODY", 4) == 0 && has_val) {
		if (vallen == 4 && strncasecmp(val, "7BIT", 4) == 0)
			cmd->body_8bit = 0;
		else if (vallen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
			cmd->body_8bit = 1;
		else
			SMTP_CMD_FAIL("501 5.5.4 Unsupported BODY type");
		return 0;
	}
	if (kwlen == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0 && !has_val) {
		cmd->smtputf8 = 1;
		return 0;
	}
	SMTP_CMD_FAIL("555 5.5.4 Unsupported parameter %.*s",
	    (int)(kwlen > 64 ? 64 : kwlen), kw);
}

static int
smtp_cmd_mailrcpt(const char *p, struct smtp_cmd *cmd, int mail,
    char *reply, size_t replylen)
{
	const char *prefix = mail ? "FROM:" : "TO:";
	const char *code = mail ? "5.1.7" : "5.1.3";
	const char *what = mail ? "sender" : "recipient";
	const char *why;
	struct addr a;
	size_t plen = strlen(prefix);

	if (strncasecmp(p, prefix, plen) != 0)
		SMTP_CMD_FAIL("501 5.5.4 Syntax: %s", mail ?
		    "MAIL FROM:<address>" : "RCPT TO:<address>");
	p += plen;
	while (*p == ' ')	/* "MAIL FROM: <a@b>" is common enough */
		p++;
	if ((p = smtp_cmd_path(p, cmd)) == NULL)
		SMTP_CMD_FAIL("501 %s Bad %s address syntax", code, what);
	while (*p != '\0') {
		const char *kw, *eq;
		size_t n;

		if (*p != ' ')
			SMTP_CMD_FAIL("501 %s Bad %s address syntax", code,
			    what);
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		kw = p;
		while (*p != '\0' && *p != ' ')
			p++;
		n = p - kw;
		if (!mail)
			SMTP_CMD_FAIL("555 5.5.4 Unsupported parameter %.*s",
			    (int)(n > 64 ? 64 : n), kw);
		eq = memchr(kw, '=', n);
		if (smtp_cmd_param(kw, eq ? (size_t)(eq - kw) : n,
		    eq ? eq + 1 : NULL, eq ? (size_t)(p - eq - 1) : 0,
		    eq != NULL, cmd, reply, replylen) == -1)
			return -1;
	}
	/*
	 * RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle
	 * brackets. Nothing longer is taken, so no buffer downstream ever
	 * has to cut one (a cut address could name another mailbox).
	 */
	if (strlen(cmd->path) > SMTP_CMD_ADDR_MAX)
		SMTP_CMD_FAIL("553 %s Bad %s address: longer than %d octets",
		    code, what, SMTP_CMD_ADDR_MAX);
	if (cmd->path[0] == '\0') {
		if (!mail)
			SMTP_CMD_FAIL("501 5.1.3 Bad recipient address syntax");
		return 0;
	}
	/* RFC 5321 4.5.1: <Postmaster> without a domain must be accepted. */
	if (!mail && strcasecmp(cmd->path, "postmaster") == 0)
		return 0;
	/*
	 * A recipient's UTF-8 permission comes from MAIL's SMTPUTF8, which
	 * the engine knows and checks again; here any well-formed UTF-8 is
	 * syntax.
	 */
	if (addr_parse(cmd->path, mail ? cmd->smtputf8 : 1, &a, &why) == -1)
		SMTP_CMD_FAIL("501 %s Bad %s address syntax: %s", code, what,
		    why);
	return 0;
}

static int
smtp_cmd_bdat(const char *p, struct smtp_cmd *cmd, char *reply,
    size_t replylen)
{
	long long v = 0;
	size_t n = 0;

	for (; isdigit((unsigned char)p[n]); n++) {
		if (n >= 18)
			SMTP_CMD_FAIL("501 5.5.4 BDAT chunk size too large");
		v = v * 10 + (p[n] - '0');
	}
	if (n == 0)
		SMTP_CMD_FAIL("501 5.5.4 Syntax: BDAT size [LAST]");
	cmd->chunk_size = v;
	p += n;
	if (*p == '\0')
		return 0;
	while (*p == ' ')
		p++;
	if (strcasecmp(p, "LAST") == 0) {
		cmd->last = 1;
		return 0;
	}
	SMTP_CMD_FAIL("501 5.5.4 Syntax: BDAT size [LAST]");
}

int
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd,
    char *reply, size_t replylen)
{
	const struct smtp_cmd_verb *v = NULL;
	char buf[SMTP_CMD_MAX + 1];
	const char *args;
	size_t vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = SMTP_VERB_NONE;
	cmd->size = -1;
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\r' || line[i] == '\n')
			SMTP_CMD_FAIL("500 5.5.2 Syntax error: bare CR or LF "
			    "in command");
		if (line[i] == '\0')
			SMTP_CMD_FAIL("500 5.5.2 Syntax error: NUL in command");
	}
	if (len > SMTP_CMD_MAX)
		SMTP_CMD_FAIL("500 5.5.2 Syntax error: line too long");
	/* From here on the line is a C string. */
	memcpy(buf, line, len);
	buf[len] = '\0';
	line = buf;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (size_t i = 0; i < sizeof(smtp_cmd_verbs) /
	    sizeof(smtp_cmd_verbs[0]); i++) {
		if (strlen(smtp_cmd_verbs[i].name) == vlen &&
		    strncasecmp(line, smtp_cmd_verbs[i].name, vlen) == 0) {
			v = &smtp_cmd_verbs[i];
			break;
		}
	}
	if (v == NULL)
		SMTP_CMD_FAIL("500 5.5.1 Command unrecognized");
	args = line + vlen;
	if (*args == ' ')
		args++;
	cmd->verb = v->verb;
	switch (v->args) {
	case SMTP_ARGS_NONE:
		while (*args == ' ')
			args++;
		if (*args != '\0')
			SMTP_CMD_FAIL("501 5.5.4 Syntax: %s takes no arguments",
			    v->name);
		return 0;
	case SMTP_ARGS_TEXT:
	case SMTP_ARGS_NEEDED:
		if (v->args == SMTP_ARGS_NEEDED && *args == '\0')
			SMTP_CMD_FAIL("501 5.5.4 Syntax: %s argument",
			    v->name);
		if (strlen(args) >= sizeof(cmd->arg))
			SMTP_CMD_FAIL("501 5.5.4 Argument too long");
		strcpy(cmd->arg, args);
		return 0;
	case SMTP_ARGS_DOMAIN:
		return smtp_cmd_domain(args, cmd, reply, replylen, v->name);
	case SMTP_ARGS_MAIL:
		return smtp_cmd_mailrcpt(args, cmd, 1, reply, replylen);
	case SMTP_ARGS_RCPT:
		return smtp_cmd_mailrcpt(args, cmd, 0, reply, replylen);
	case SMTP_ARGS_BDAT:
		return smtp_cmd_bdat(args, cmd, reply, replylen);
	}
	fatalx("smtp_cmd_parse: verb table");
}
