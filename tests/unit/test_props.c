/* Property store: inheritance, value checks, domains, the built-in table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "props_fx.h"

#include <sqlite3.h>

#include "db.h"
#include "props.h"

static void
set_ok(struct props *p, enum props_scope s, const char *key,
    const char *name, const char *value)
{
	char *err = NULL;

	if (props_set(p, s, key, name, value, &err) != 0)
		fail_msg("props_set %s=%s: %s", name, value ? value : "(unset)",
		    err);
}

static void
expect(struct props *p, const char *email, const char *name,
    const char *value, enum props_scope level)
{
	enum props_scope from = -1;
	char *v = props_get(p, email, name, &from);

	assert_non_null(v);
	if (strcmp(v, value) != 0 || from != level)
		fail_msg("%s for %s: got %s (%s), want %s (%s)", name,
		    email ? email : "(global)", v, props_scope_name(from), value,
		    props_scope_name(level));
	free(v);
}

/* user over domain over global over default, each level for its keys. */
static void
test_inheritance(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	static const struct {
		const char *email;
		const char *value;
		enum props_scope level;
	} cases[] = {
		{ "bob@example.net", "no-encryption", PROPS_SCOPE_USER },
		{ "BOB@Example.NET", "no-encryption", PROPS_SCOPE_USER },
		{ "carol@example.net", "mandatory", PROPS_SCOPE_DOMAIN },
		{ "carol@sub.example.net", "allow", PROPS_SCOPE_GLOBAL },
		{ "dave@example.org", "allow", PROPS_SCOPE_GLOBAL },
		{ NULL, "allow", PROPS_SCOPE_GLOBAL },
	};
	size_t i;

	expect(p, "bob@example.net", "encrypt-mode", "allow",
	    PROPS_SCOPE_DEFAULT);
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "encrypt-mode", "allow");
	set_ok(p, PROPS_SCOPE_DOMAIN, "Example.NET", "encrypt-mode",
	    "mandatory");
	set_ok(p, PROPS_SCOPE_USER, "Bob@example.net", "encrypt-mode",
	    "no-encryption");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect(p, cases[i].email, "encrypt-mode", cases[i].value,
		    cases[i].level);
	/* Another property is untouched by all of this. */
	expect(p, "bob@example.net", "sign-enabled", "false",
	    PROPS_SCOPE_DEFAULT);
}

static void
test_unset_falls_through(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;

	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "webmail-enabled", "true");
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "webmail-enabled",
	    "false");
	set_ok(p, PROPS_SCOPE_USER, "bob@example.net", "webmail-enabled",
	    "true");
	expect(p, "bob@example.net", "webmail-enabled", "true",
	    PROPS_SCOPE_USER);
	set_ok(p, PROPS_SCOPE_USER, "bob@example.net", "webmail-enabled",
	    NULL);
	expect(p, "bob@example.net", "webmail-enabled", "false",
	    PROPS_SCOPE_DOMAIN);
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "webmail-enabled", NULL);
	expect(p, "bob@example.net", "webmail-enabled", "true",
	    PROPS_SCOPE_GLOBAL);
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "webmail-enabled", NULL);
	expect(p, "bob@example.net", "webmail-enabled", "false",
	    PROPS_SCOPE_DEFAULT);
	/* Unsetting what is not set is not an error. */
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "webmail-enabled", NULL);
	assert_int_equal(props_get_bool(p, "bob@example.net",
	    "webmail-enabled"), 0);
}

static void
test_get_at(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	enum props_scope from;
	char *v;

	set_ok(p, PROPS_SCOPE_USER, "bob@example.net", "quota", "1000");
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "quota", "2000");
	v = props_get_at(p, PROPS_SCOPE_DOMAIN, "EXAMPLE.net", "quota", &from);
	assert_string_equal(v, "2000");
	assert_int_equal(from, PROPS_SCOPE_DOMAIN);
	free(v);
	v = props_get_at(p, PROPS_SCOPE_GLOBAL, NULL, "quota", &from);
	assert_string_equal(v, "104857600");
	assert_int_equal(from, PROPS_SCOPE_DEFAULT);
	free(v);
	assert_int_equal(props_get_int(p, "bob@example.net", "quota"), 1000);
	assert_int_equal(props_get_int(p, "eve@example.net", "quota"), 2000);
}

/* Values are stored in canonical form. */
static void
test_normalised(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	static const struct {
		const char *name, *in, *out;
	} cases[] = {
		{ "sign-enabled", "TRUE", "true" },
		{ "sign-enabled", "False", "false" },
		{ "encrypt-mode", "MANDATORY", "mandatory" },
		{ "password-min-length", "16", "16" },
		{ "password-min-length", "016", "16" },
		{ "encrypt-header-trigger", "  X-Secure :  yes ", "X-Secure: yes" },
		{ "encrypt-header-trigger", "", "" },
		{ "portal-relay-domain", "Relay.Example", "relay.example" },
		{ "reply-allowed-domains", "A.example , b.example",
		    "a.example,b.example" },
		{ "subject-trigger", "\\[(secure|encrypt)\\]",
		    "\\[(secure|encrypt)\\]" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct props_def *d = props_def_find(cases[i].name);
		char *norm = NULL, *err = NULL;
		int rc;

		assert_non_null(d);
		rc = props_check_value(d, cases[i].in, &norm, &err);
		if (rc != 0)
			fail_msg("%s=%s refused: %s", cases[i].name,
			    cases[i].in, err);
		assert_string_equal(norm, cases[i].out);
		free(norm);
	}
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "sign-enabled", "TRUE");
	expect(p, NULL, "sign-enabled", "true", PROPS_SCOPE_GLOBAL);
}

/* Bad names, scopes, keys and values are refused with a message. */
static void
test_refused(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	static const struct {
		enum props_scope scope;
		const char *key, *name, *value, *msg;
	} cases[] = {
		{ PROPS_SCOPE_GLOBAL, NULL, "no-such-thing", "1", "unknown" },
		{ PROPS_SCOPE_USER, "bob@example.net", "remote-portal-enabled",
		    "true", "user level" },
		{ PROPS_SCOPE_DOMAIN, "example.net",
		    "require-tunnel", "true", "domain level" },
		{ PROPS_SCOPE_GLOBAL, NULL, "locality", "internal",
		    "global level" },
		{ PROPS_SCOPE_DEFAULT, NULL, "sign-enabled", "true", "default" },
		{ PROPS_SCOPE_USER, "not-an-address", "sign-enabled", "true",
		    "email" },
		{ PROPS_SCOPE_USER, NULL, "sign-enabled", "true", "email" },
		{ PROPS_SCOPE_DOMAIN, "bad domain", "sign-enabled", "true",
		    "domain name" },
		{ PROPS_SCOPE_DOMAIN, "-x.example", "sign-enabled", "true",
		    "domain name" },
		{ PROPS_SCOPE_GLOBAL, NULL, "sign-enabled", "yes", "boolean" },
		{ PROPS_SCOPE_GLOBAL, NULL, "sign-enabled", "", "boolean" },
		{ PROPS_SCOPE_GLOBAL, NULL, "password-min-length", "7",
		    "out of range" },
		{ PROPS_SCOPE_GLOBAL, NULL, "password-min-length", "129",
		    "out of range" },
		{ PROPS_SCOPE_GLOBAL, NULL, "password-min-length", "12x",
		    "not an integer" },
		{ PROPS_SCOPE_GLOBAL, NULL, "password-min-length", " 12",
		    "not an integer" },
		{ PROPS_SCOPE_GLOBAL, NULL, "quota",
		    "99999999999999999999999", "not an integer" },
		{ PROPS_SCOPE_GLOBAL, NULL, "encrypt-mode", "always",
		    "not one of" },
		{ PROPS_SCOPE_GLOBAL, NULL, "encrypt-mode", "allo",
		    "not one of" },
		{ PROPS_SCOPE_GLOBAL, NULL, "subject-trigger", "((",
		    "regular expression" },
		{ PROPS_SCOPE_GLOBAL, NULL, "subject-trigger", "",
		    "empty regular expression" },
		{ PROPS_SCOPE_GLOBAL, NULL, "trigger-webmail-header",
		    "no colon here", "Name: value" },
		{ PROPS_SCOPE_GLOBAL, NULL, "trigger-webmail-header",
		    "Bad Name: x", "Name: value" },
		{ PROPS_SCOPE_GLOBAL, NULL, "trigger-webmail-header",
		    "X: a\r\nBcc: evil@example.org", "control character" },
		{ PROPS_SCOPE_GLOBAL, NULL, "portal-relay-domain",
		    "relay..example", "domain name" },
		{ PROPS_SCOPE_USER, "bob@example.net", "reply-allowed-domains",
		    "a.example,,b", "domain name" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;

		if (props_set(p, cases[i].scope, cases[i].key, cases[i].name,
		    cases[i].value, &err) != -1)
			fail_msg("case %zu: %s=%s accepted", i, cases[i].name,
			    cases[i].value);
		assert_non_null(err);
		if (strstr(err, cases[i].msg) == NULL)
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i,
			    err, cases[i].msg);
		free(err);
	}
	/* Nothing was stored by the refusals. */
	expect(p, "bob@example.net", "sign-enabled", "false",
	    PROPS_SCOPE_DEFAULT);
	expect(p, NULL, "password-min-length", "12", PROPS_SCOPE_DEFAULT);
}

static void
test_node_restriction(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	char *err = NULL;

	props_set_node(p, PROPS_NODE_PORTAL);
	assert_int_equal(props_set(p, PROPS_SCOPE_GLOBAL, NULL,
	    "remote-portal-enabled", "true", &err), -1);
	assert_non_null(strstr(err, "not used on external-portal"));
	free(err);
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "webmail-standalone", "true");
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "trigger-webmail-header-enabled",
	    "false");
	props_set_node(p, PROPS_NODE_GW);
	assert_int_equal(props_set(p, PROPS_SCOPE_GLOBAL, NULL,
	    "webmail-standalone", "true", &err), -1);
	free(err);
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "remote-portal-enabled", "true");
}

struct listed {
	char	buf[512];
};

static void
list_cb(void *arg, const char *name, const char *value)
{
	struct listed *l = arg;
	size_t n = strlen(l->buf);

	snprintf(l->buf + n, sizeof(l->buf) - n, "%s=%s;", name, value);
}

static void
test_list(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	struct listed l;

	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "sign-enabled", "true");
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "encrypt-mode",
	    "mandatory");
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.org", "locality", "internal");
	set_ok(p, PROPS_SCOPE_GLOBAL, NULL, "webmail-enabled", "true");
	memset(&l, 0, sizeof(l));
	assert_int_equal(props_list(p, PROPS_SCOPE_DOMAIN, "EXAMPLE.NET",
	    list_cb, &l), 0);
	assert_string_equal(l.buf, "encrypt-mode=mandatory;sign-enabled=true;");
	memset(&l, 0, sizeof(l));
	assert_int_equal(props_list(p, PROPS_SCOPE_GLOBAL, NULL, list_cb, &l),
	    0);
	assert_string_equal(l.buf, "webmail-enabled=true;");
	memset(&l, 0, sizeof(l));
	assert_int_equal(props_list(p, PROPS_SCOPE_USER, "bob@example.net",
	    list_cb, &l), 0);
	assert_string_equal(l.buf, "");
}

static void
domain_cb(void *arg, const char *domain)
{
	struct listed *l = arg;
	size_t n = strlen(l->buf);

	snprintf(l->buf + n, sizeof(l->buf) - n, "%s;", domain);
}

static void
test_domains(void **state)
{
	struct props *p = ((struct fixture *)*state)->p;
	struct listed l;
	char *err = NULL;

	assert_int_equal(props_domain_add(p, "Example.NET", &err), 0);
	assert_int_equal(props_domain_add(p, "relay-to-webmail.private", &err),
	    0);
	/* Adding it again is a no-op that says so, not an error. */
	assert_int_equal(props_domain_add(p, "example.net", &err), 1);
	assert_null(err);
	assert_int_equal(props_domain_add(p, "not a domain", &err), -1);
	free(err);
	assert_int_equal(props_domain_exists(p, "EXAMPLE.net"), 1);
	assert_int_equal(props_domain_exists(p, "example.org"), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(props_domain_list(p, domain_cb, &l), 0);
	assert_string_equal(l.buf, "example.net;relay-to-webmail.private;");

	/* Removing a domain takes its properties with it. */
	set_ok(p, PROPS_SCOPE_DOMAIN, "example.net", "encrypt-mode",
	    "mandatory");
	set_ok(p, PROPS_SCOPE_DOMAIN, "relay-to-webmail.private",
	    "revert-rewrite-recipient", "true");
	assert_int_equal(props_domain_remove(p, "example.NET", &err), 0);
	expect(p, "bob@example.net", "encrypt-mode", "allow",
	    PROPS_SCOPE_DEFAULT);
	expect(p, "x@relay-to-webmail.private", "revert-rewrite-recipient",
	    "true", PROPS_SCOPE_DOMAIN);
	assert_int_equal(props_domain_exists(p, "example.net"), 0);
	assert_int_equal(props_domain_remove(p, "example.net", &err), -1);
	assert_non_null(strstr(err, "no such domain"));
	free(err);
}

/* A value changed behind our back to something invalid fails closed. */
static void
test_corrupt_row_fails_closed(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;

	set_ok(f->p, PROPS_SCOPE_DOMAIN, "example.net", "encrypt-mode",
	    "mandatory");
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE props_domain SET value = "
	    "'Mandatory!' WHERE name = 'encrypt-mode'", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_null(props_get(f->p, "bob@example.net", "encrypt-mode", NULL));
	/* Other domains are unaffected. */
	expect(f->p, "bob@example.org", "encrypt-mode", "allow",
	    PROPS_SCOPE_DEFAULT);
}

/* Every built-in entry is usable: its default passes its own check. */
static void
test_defs_consistent(void **state)
{
	const struct props_def *d, *e;
	int n = 0;

	(void)state;
	for (d = props_defs; d->name != NULL; d++, n++) {
		char *err = NULL, *norm = NULL;

		if (props_check_value(d, d->def, &norm, &err) != 0)
			fail_msg("%s: default refused: %s", d->name, err);
		if (strcmp(norm, d->def) != 0)
			fail_msg("%s: default %s is not canonical (%s)",
			    d->name, d->def, norm);
		free(norm);
		assert_true(d->scopes != 0);
		assert_true(d->nodes != 0);
		assert_non_null(d->doc);
		assert_true(strlen(d->doc) > 10);
		if (d->type == PROPS_INT)
			assert_true(d->min >= 0 && d->min <= d->max);
		if (d->type == PROPS_ENUM)
			assert_non_null(d->choices);
		assert_ptr_equal(props_def_find(d->name), d);
		for (e = d + 1; e->name != NULL; e++)
			assert_string_not_equal(d->name, e->name);
	}
	assert_true(n >= 28);
	assert_null(props_def_find("no-such-thing"));
}

static void
test_db_file_mode(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	struct db *db;
	sqlite3_stmt *st;
	char *err = NULL;

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	db = db_open(f->path, &err);
	assert_non_null(db);
	assert_int_equal(sqlite3_prepare_v2(db_sqlite(db), "PRAGMA journal_mode", -1, &st,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(db_exec(db, "SELEKT 1", &err), -1);
	assert_non_null(err);
	free(err);
	db_close(db);
	assert_null(db_open("/nonexistent-dir/x.db", &err));
	assert_non_null(err);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inheritance, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unset_falls_through, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_get_at, setup, teardown),
		cmocka_unit_test_setup_teardown(test_normalised, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_restriction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_row_fails_closed,
		    setup, teardown),
		cmocka_unit_test(test_defs_consistent),
		cmocka_unit_test_setup_teardown(test_db_file_mode, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
