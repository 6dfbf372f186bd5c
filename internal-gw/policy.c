/*
 * Per-recipient policy of the gateway (see policy.h). Untrusted input: the
 * envelope addresses, the subject and the header fields of a message from
 * the LAN; they are only matched (regexec, header_trigger_match), never
 * interpreted. The sender's properties say whether the sender asked for
 * encryption (triggers) and signing; the recipient's say where the
 * recipient is and how it may receive. A failed lookup is an error for the
 * caller (4xx), never a silent fall back to sending in clear.
 */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "header.h"
#include "log.h"
#include "policy.h"
#include "props.h"
#include "xmalloc.h"

struct policy_ctx {
	struct props		*props;
	struct policy_decision	*d;
	size_t			 len;	/* of d->rule */
};

static void policy_note(struct policy_ctx *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

const char *
policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_PASS: return "pass";
	case POLICY_RELAY: return "relay";
	case POLICY_SIGN: return "sign";
	case POLICY_ENCRYPT: return "encrypt";
	case POLICY_PORTAL_WEBMAIL: return "portal-webmail";
	case POLICY_PORTAL_PDF: return "portal-pdf";
	case POLICY_PDF: return "pdf";
	case POLICY_REFUSE: return "refuse";
	case POLICY_PGP: return "pgp";
	}
	return "?";
}

/* Appends "; text" to the rule; a rule too long for the buffer ends "...". */
static void
policy_note(struct policy_ctx *c, const char *fmt, ...)
{
	char *rule = c->d->rule, buf[sizeof(c->d->rule)];
	size_t cap = sizeof(c->d->rule), n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->len >= cap - 1)
		return;
	n = snprintf(rule + c->len, cap - c->len, "%s%s",
	    c->len > 0 ? "; " : "", buf);
	if (c->len + n >= cap) {
		memcpy(rule + cap - 4, "...", 4);
		c->len = cap - 1;
	} else
		c->len += n;
}

/* " (user a@b)", " (domain b)", " (global)", " (default)" */
static void
policy_level(const char *email, enum props_scope lvl, char *out, size_t len)
{
	char dom[ADDR_MAX];

	switch (lvl) {
	case PROPS_SCOPE_USER:
		snprintf(out, len, "user %s", email);
		break;
	case PROPS_SCOPE_DOMAIN:
		if (addr_domain_of(email, dom, sizeof(dom)) == -1)
			dom[0] = '\0';
		snprintf(out, len, "domain %s", dom);
		break;
	default:
		snprintf(out, len, "%s", props_scope_name(lvl));
		break;
	}
}

/*
 * The value of name for email (NULL: global); with note, "name=value
 * (level)" joins the rule. NULL when the lookup failed (logged).
 */
static char *
policy_prop(struct policy_ctx *c, const char *email, const char *name,
    int note)
{
	enum props_scope lvl = PROPS_SCOPE_DEFAULT;
	char where[ADDR_MAX + 16], *v;

	if ((v = props_get(c->props, email, name, &lvl)) == NULL) {
		log_warnx("policy: cannot look up %s for %s", name,
		    email ? email : "(global)");
		return NULL;
	}
	if (note) {
		policy_level(email, lvl, where, sizeof(where));
		policy_note(c, "%s=%s (%s)", name, v, where);
	}
	return v;
}

/* 1, 0, or -1 when the lookup failed. */
static int
policy_bool(struct policy_ctx *c, const char *email, const char *name,
    int note)
{
	char *v;
	int r;

	if ((v = policy_prop(c, email, name, note)) == NULL)
		return -1;
	r = strcmp(v, "true") == 0;
	free(v);
	return r;
}

/* -1 (logged) when a stored subject-trigger does not compile. */
static int
policy_regcomp(const char *pat, regex_t *re, int flags)
{
	if (regcomp(re, pat, REG_EXTENDED | REG_ICASE | flags) != 0) {
		log_warnx("policy: subject-trigger \"%s\" does not compile",
		    pat);
		return -1;
	}
	return 0;
}

/*
 * Did the sender ask for encryption? 1 when a trigger matched, 0 when not,
 * -1 on a failed lookup.
 */
static int
policy_triggers(struct policy_ctx *c, const char *from,
    const struct policy_msg *msg)
{
	char *on, *spec, *pat = NULL, w1[ADDR_MAX + 16], w2[ADDR_MAX + 16];
	enum props_scope lvl = PROPS_SCOPE_DEFAULT, plvl = PROPS_SCOPE_DEFAULT;
	regex_t re;
	int hit = 0;

	if ((on = props_get(c->props, from, "subject-trigger-enabled",
	    &lvl)) == NULL)
		return -1;
	if (strcmp(on, "true") == 0 && msg->subject != NULL) {
		if ((pat = props_get(c->props, from, "subject-trigger",
		    &plvl)) == NULL || policy_regcomp(pat, &re, REG_NOSUB) == -1) {
			free(on);
			free(pat);
			return -1;
		}
		if (regexec(&re, msg->subject, 0, NULL, 0) == 0) {
			hit = 1;
			policy_level(from, lvl, w1, sizeof(w1));
			policy_level(from, plvl, w2, sizeof(w2));
			policy_note(c, "subject-trigger-enabled=true (%s); "
			    "subject matches subject-trigger=%s (%s)", w1, pat,
			    w2);
		}
		regfree(&re);
		free(pat);
	}
	free(on);

	if ((spec = props_get(c->props, from, "encrypt-header-trigger",
	    &lvl)) == NULL)
		return -1;
	if (*spec != '\0' && msg->hdr != NULL &&
	    header_trigger_match(msg->hdr, spec)) {
		hit = 1;
		policy_level(from, lvl, w1, sizeof(w1));
		policy_note(c, "header matches encrypt-header-trigger=%s (%s)",
		    spec, w1);
	}
	free(spec);
	return hit;
}

/*
 * A portal method (webmail or pdf-otp) for rcpt: 1 when it applies, 0 when
 * not, -1 on a failed lookup. *portal caches remote-portal-enabled (-2:
 * not looked up yet).
 */
static int
policy_portal_method(struct policy_ctx *c, const char *rcpt,
    const char *enabled, const char *onlyif, int mandatory, int *portal)
{
	int on, only;

	if ((on = policy_bool(c, rcpt, enabled, 1)) != 1)
		return on;
	if ((only = policy_bool(c, rcpt, onlyif, 0)) == -1)
		return -1;
	if (only && !mandatory) {
		policy_note(c, "%s=true and encryption is not mandatory",
		    onlyif);
		return 0;
	}
	if (*portal == -2 && (*portal = policy_bool(c, NULL,
	    "remote-portal-enabled", 1)) == -1)
		return -1;
	return *portal;
}

/*
 * The gateway's own password PDF for rcpt: pdf-encryption-enabled (and
 * pdf-only-if-mandatory), with a password to use: pdf-password, or
 * pdf-password-send-to-originator. 1, 0 or -1 on a failed lookup.
 */
static int
policy_pdf_method(struct policy_ctx *c, const char *rcpt, int mandatory)
{
	char *pw;
	int on, only, send;

	if ((on = policy_bool(c, rcpt, "pdf-encryption-enabled", 1)) != 1)
		return on;
	if ((only = policy_bool(c, rcpt, "pdf-only-if-mandatory", 0)) == -1)
		return -1;
	if (only && !mandatory) {
		policy_note(c, "pdf-only-if-mandatory=true and encryption is "
		    "not mandatory");
		return 0;
	}
	if ((pw = policy_prop(c, rcpt, "pdf-password", 0)) == NULL)
		return -1;
	if (*pw != '\0') {
		free(pw);
		policy_note(c, "pdf-password is set");
		return 1;
	}
	free(pw);
	if ((send = policy_bool(c, rcpt, "pdf-password-send-to-originator",
	    1)) != 0)
		return send;
	policy_note(c, "no pdf-password and no "
	    "pdf-password-send-to-originator");
	return 0;
}

int
policy_method_order(const char *value,
    enum policy_method out[POLICY_MAX_METHODS], int *n)
{
	static const char *const names[POLICY_MAX_METHODS] = {
		"smime", "pgp", "pdf", "portal" };
	char buf[128], *tok, *save = NULL;
	int seen = 0;

	*n = 0;
	if (strlen(value) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		int m;

		for (m = 0; m < POLICY_MAX_METHODS; m++)
			if (strcmp(tok, names[m]) == 0)
				break;
		if (m == POLICY_MAX_METHODS || (seen & (1 << m)))
			return -1;
		seen |= 1 << m;
		out[(*n)++] = (enum policy_method)m;
	}
	return *n > 0 ? 0 : -1;
}

/*
 * Tries one method of encryption-method-order for rcpt: 1 with d->action
 * set when it applies, 0 when not, -1 on a failed lookup.
 */
static int
policy_method(struct policy_ctx *c, const struct policy_msg *msg,
    const char *rcpt, enum policy_method m,
    int (*has_cert)(void *, const char *), void *cert_arg, int *portal)
{
	struct policy_decision *d = c->d;
	int r;

	switch (m) {
	case POLICY_M_SMIME:
		if (has_cert != NULL && (r = has_cert(cert_arg, rcpt)) == -1) {
			log_warnx("policy: certificate lookup for %s failed",
			    rcpt);
			return -1;
		}
		if (has_cert == NULL || r == 0) {
			policy_note(c, "no valid certificate for %s", rcpt);
			return 0;
		}
		policy_note(c, "valid certificate for %s", rcpt);
		d->action = POLICY_ENCRYPT;
		return 1;
	case POLICY_M_PGP:
		if ((r = policy_bool(c, rcpt, "pgp-enabled", 0)) != 1)
			return r;
		free(policy_prop(c, rcpt, "pgp-enabled", 1));
		if (msg->has_pgp != NULL && (r = msg->has_pgp(msg->pgp_arg,
		    rcpt)) == -1) {
			log_warnx("policy: OpenPGP key lookup for %s failed",
			    rcpt);
			return -1;
		}
		if (msg->has_pgp == NULL || r == 0) {
			policy_note(c, "no usable OpenPGP key for %s", rcpt);
			return 0;
		}
		policy_note(c, "usable OpenPGP key for %s", rcpt);
		d->action = POLICY_PGP;
		return 1;
	case POLICY_M_PDF:
		if ((r = policy_pdf_method(c, rcpt, d->mandatory)) == 1)
			d->action = POLICY_PDF;
		return r;
	case POLICY_M_PORTAL:
		if ((r = policy_portal_method(c, rcpt, "webmail-enabled",
		    "webmail-only-if-mandatory", d->mandatory, portal)) != 0) {
			if (r == 1)
				d->action = POLICY_PORTAL_WEBMAIL;
			return r;
		}
		if ((r = policy_portal_method(c, rcpt, "pdf-otp-enabled",
		    "pdf-otp-only-if-mandatory", d->mandatory, portal)) == 1)
			d->action = POLICY_PORTAL_PDF;
		return r;
	}
	return 0;
}

int
policy_decide(struct props *p, const struct policy_msg *msg,
    const char *rcpt, int (*has_cert)(void *, const char *),
    void *cert_arg, struct policy_decision *d)
{
	struct policy_ctx c = { .props = p, .d = d, .len = 0 };
	const char *from = msg->from;
	char *v;
	enum policy_method order[POLICY_MAX_METHODS];
	int internal, mode, trig, sign, portal = -2, r, norder;

	memset(d, 0, sizeof(*d));
	d->action = POLICY_REFUSE;
	if (from != NULL && *from == '\0')
		from = NULL;	/* the null sender has global settings */

	if ((v = policy_prop(&c, rcpt, "locality", 0)) == NULL)
		return -1;
	internal = strcmp(v, "internal") == 0;
	free(v);
	if (internal) {
		free(policy_prop(&c, rcpt, "locality", 1));
		d->action = POLICY_PASS;
		return 0;
	}

	if ((v = policy_prop(&c, rcpt, "encrypt-mode", 1)) == NULL)
		return -1;
	mode = strcmp(v, "no-encryption") == 0 ? 0 :
	    strcmp(v, "mandatory") == 0 ? 2 : 1;
	free(v);
	if ((trig = policy_triggers(&c, from, msg)) == -1)
		return -1;
	if ((sign = policy_bool(&c, from, "sign-enabled", 0)) == -1)
		return -1;

	if (mode == 0) {
		if (trig)
			policy_note(&c, "encryption trigger ignored");
		goto clear;
	}
	d->mandatory = mode == 2 || trig;

	if ((v = policy_prop(&c, rcpt, "encryption-method-order", 0)) ==
	    NULL)
		return -1;
	if (policy_method_order(v, order, &norder) == -1) {
		log_warnx("policy: encryption-method-order \"%s\" for %s is "
		    "not valid", v, rcpt);
		free(v);
		return -1;
	}
	if (norder != 4 || order[0] != POLICY_M_SMIME ||
	    order[1] != POLICY_M_PGP || order[2] != POLICY_M_PDF)
		free(policy_prop(&c, rcpt, "encryption-method-order", 1));
	free(v);
	for (int i = 0; i < norder; i++) {
		if ((r = policy_method(&c, msg, rcpt, order[i], has_cert,
		    cert_arg, &portal)) == -1)
			return -1;
		if (r == 1) {
			if (d->action == POLICY_ENCRYPT ||
			    d->action == POLICY_PGP) {
				d->sign = sign;
				free(policy_prop(&c, from, "sign-enabled", 1));
			}
			return 0;
		}
	}
	if (d->mandatory) {
		d->action = POLICY_REFUSE;
		snprintf(d->reason, sizeof(d->reason), "encryption is "
		    "mandatory but there is no valid certificate and no "
		    "portal delivery for this recipient");
		return 0;
	}
clear:
	d->sign = sign;
	d->action = sign ? POLICY_SIGN : POLICY_RELAY;
	free(policy_prop(&c, from, "sign-enabled", 1));
	return 0;
}

char *
policy_subject_strip(struct props *p, const char *from,
    const char *subject)
{
	const char *pos;
	char *out, *start, *pat;
	size_t len = 0, n;
	regmatch_t m;
	regex_t re;
	int flags = 0, changed = 0;

	if (subject == NULL)
		return NULL;
	if (from != NULL && *from == '\0')
		from = NULL;
	if (props_get_bool(p, from, "subject-trigger-enabled") != 1 ||
	    props_get_bool(p, from, "subject-trigger-remove-pattern") != 1)
		return NULL;
	if ((pat = props_get(p, from, "subject-trigger", NULL)) == NULL)
		return NULL;
	if (policy_regcomp(pat, &re, 0) == -1) {
		free(pat);
		return NULL;
	}
	free(pat);

	out = xmalloc(strlen(subject) + 1);
	pos = subject;
	while (*pos != '\0' && regexec(&re, pos, 1, &m, flags) == 0 &&
	    m.rm_eo > m.rm_so) {
		memcpy(out + len, pos, m.rm_so);
		len += m.rm_so;
		pos += m.rm_eo;
		/* "a [encrypt] b" becomes "a b", not "a  b". */
		if (len > 0 && out[len - 1] == ' ')
			while (*pos == ' ' || *pos == '\t')
				pos++;
		flags = REG_NOTBOL;
		changed = 1;
	}
	regfree(&re);
	if (!changed) {
		free(out);
		return NULL;
	}
	n = strlen(pos);
	memcpy(out + len, pos, n + 1);
	len += n;
	while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t'))
		out[--len] = '\0';
	for (start = out; *start == ' ' || *start == '\t'; start++)
		;
	memmove(out, start, strlen(start) + 1);
	return out;
}
