/*
 * The request accessors of web_req.h. Properties are read through the
 * calling pool thread's own reader (props_thread()).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "props.h"
#include "web/web_cookie.h"
#include "web/web_req.h"
#include "web/web_session.h"
#include "xmalloc.h"

static struct props *
web_req_props(struct web_req *r)
{
	return props_thread(r->conf->dbpath, PROPS_NODE_PORTAL);
}

void
web_header(struct web_req *r, const char *name, const char *value)
{
	if (r->nh == WEB_MAX_RESP_HEADERS)
		fatalx("web: too many response headers");
	r->hname[r->nh] = xstrdup(name);
	r->hval[r->nh] = xstrdup(value);
	r->nh++;
}

void
web_redirect(struct web_req *r, const char *location)
{
	/* Only our own absolute paths: never an open redirect. */
	if (location[0] != '/' || location[1] == '/' || location[1] == '\\')
		fatalx("web: redirect to %s", location);
	r->status = 303;
	web_header(r, "Location", location);
}

const char *
web_param(const struct web_req *r, const char *name)
{
	const char *v;

	if (r->method == WEB_POST && (v = web_form_get(&r->form, name)))
		return v;
	return web_form_get(&r->q, name);
}

int64_t
web_param_id(const struct web_req *r, const char *name)
{
	const char *v = web_param(r, name);
	int64_t id = 0;

	if (v == NULL || *v == '\0' || strlen(v) > 18)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		id = id * 10 + (*v - '0');
	}
	return id > 0 ? id : -1;
}

int
web_prop_bool(struct web_req *r, const char *name)
{
	struct props *p = web_req_props(r);

	return p == NULL ? -1 : props_get_bool(p, r->email[0] ? r->email :
	    NULL, name);
}

char *
web_prop(struct web_req *r, const char *name)
{
	struct props *p = web_req_props(r);

	return p == NULL ? NULL : props_get(p, r->email[0] ? r->email : NULL,
	    name, NULL);
}

long long
web_prop_int(struct web_req *r, const char *name)
{
	struct props *p = web_req_props(r);

	return p == NULL ? -1 : props_get_int(p, r->email[0] ? r->email :
	    NULL, name);
}

long long
web_prop_int_user(struct web_req *r, const char *email, const char *name)
{
	struct props *p = web_req_props(r);

	return p == NULL ? -1 : props_get_int(p, email, name);
}

void
web_req_caps(struct web_req *r)
{
	r->can_reply = r->can_compose = 0;
	if (!r->signed_in || !r->conf->reply_relay)
		return;
	r->can_reply = web_prop_bool(r, "webmail-reply-enabled") == 1;
	r->can_compose = web_prop_bool(r, "webmail-compose-enabled") == 1;
}

const char *
web_req_csrf(struct web_req *r)
{
	if (r->csrf[0] == '\0' && r->csrf_base[0] != '\0')
		web_csrf_token(web_session_csrf_key(r->sessions),
		    WEB_SESSION_CSRF_KEY_LEN, r->csrf_base, r->csrf);
	return r->csrf;
}
