/*
 * The split-mode contract; see splitmode.h.
 *
 * SECURITY: splitmode_classify() and splitmode_in_relay_domain() look at
 * peer input (a header parsed by header.c, an envelope address); they only
 * compare it, through header_trigger_match() and addr_domain_of().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "log.h"
#include "props.h"
#include "splitmode.h"

/* spec (stored, or the default when it does not parse) into name/value. */
static void
splitmode_spec(const char *prop, const char *spec, char *name, char *value)
{
	const struct props_def *d;

	if (spec != NULL && header_trigger_parse(spec, name,
	    SPLITMODE_NAME_MAX, value, SPLITMODE_VALUE_MAX) == 0)
		return;
	if ((d = props_def_find(prop)) == NULL || header_trigger_parse(d->def,
	    name, SPLITMODE_NAME_MAX, value, SPLITMODE_VALUE_MAX) == -1)
		fatalx("splitmode: no valid default for %s", prop);
}

static void
splitmode_add_name(struct splitmode *s, const char *name)
{
	for (size_t i = 0; i < s->nnames; i++)
		if (strcasecmp(s->names[i], name) == 0)
			return;
	if (s->nnames < SPLITMODE_MAX_NAMES)
		snprintf(s->names[s->nnames++], SPLITMODE_NAME_MAX, "%s", name);
}

int
splitmode_load(struct props *p, struct splitmode *s)
{
	static const char *const props[2] = {
		"trigger-webmail-header", "trigger-otp-encryption-header",
	};
	char *spec[2], *dom, name[SPLITMODE_NAME_MAX];
	char value[SPLITMODE_VALUE_MAX];
	int rv = 0;

	memset(s, 0, sizeof(*s));
	spec[0] = props_get(p, NULL, props[0], NULL);
	spec[1] = props_get(p, NULL, props[1], NULL);
	dom = props_get(p, NULL, "portal-relay-domain", NULL);
	if (spec[0] == NULL || spec[1] == NULL || dom == NULL)
		rv = -1;
	else {
		splitmode_spec(props[0], spec[0], s->webmail_name,
		    s->webmail_value);
		splitmode_spec(props[1], spec[1], s->pdf_name, s->pdf_value);
		snprintf(s->relay_domain, sizeof(s->relay_domain), "%s", dom);
		splitmode_add_name(s, s->webmail_name);
		splitmode_add_name(s, s->pdf_name);
		/* Forged copies of the default names go too. */
		for (int i = 0; i < 2; i++) {
			splitmode_spec(props[i], NULL, name, value);
			splitmode_add_name(s, name);
		}
	}
	free(spec[0]);
	free(spec[1]);
	free(dom);
	if (rv == -1)
		log_warnx("splitmode: property lookup failed");
	return rv;
}

size_t
splitmode_names(const struct splitmode *s, const char **out, size_t max)
{
	size_t n;

	for (n = 0; n < s->nnames && n < max; n++)
		out[n] = s->names[n];
	return n;
}

void
splitmode_tag_field(const struct splitmode *s, enum splitmode_route r,
    char *out, size_t outlen)
{
	if (r == SPLITMODE_PDF)
		snprintf(out, outlen, "%s: %s\r\n", s->pdf_name, s->pdf_value);
	else if (r == SPLITMODE_WEBMAIL)
		snprintf(out, outlen, "%s: %s\r\n", s->webmail_name,
		    s->webmail_value);
	else
		fatalx("splitmode_tag_field: no route");
}

int
splitmode_rewrite_rcpt(const struct splitmode *s, const char *rcpt, int utf8,
    char *out, size_t outlen, const char **why)
{
	return addr_rewrite(rcpt, s->relay_domain, utf8, out, outlen, why);
}

int
splitmode_in_relay_domain(const struct splitmode *s, const char *rcpt)
{
	char dom[ADDR_MAX];

	return addr_domain_of(rcpt, dom, sizeof(dom)) == 0 &&
	    strcasecmp(dom, s->relay_domain) == 0;
}

enum splitmode_route
splitmode_classify(const struct header *h, const char *webmail_spec,
    int webmail_enabled, const char *pdf_spec, int pdf_enabled)
{
	if (pdf_enabled && pdf_spec != NULL && *pdf_spec != '\0' &&
	    header_trigger_match(h, pdf_spec) == 1)
		return SPLITMODE_PDF;
	if (webmail_enabled && webmail_spec != NULL && *webmail_spec != '\0' &&
	    header_trigger_match(h, webmail_spec) == 1)
		return SPLITMODE_WEBMAIL;
	return SPLITMODE_NONE;
}
