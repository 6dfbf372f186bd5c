/* The gateway's per-recipient policy: one row per rule of the decision. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "props_fx.h"

#include <sqlite3.h>

#include "header.h"
#include "props.h"
#include "../../internal-gw/policy.h"

#define U PROPS_SCOPE_USER
#define D PROPS_SCOPE_DOMAIN
#define G PROPS_SCOPE_GLOBAL

#define FROM "alice@example.com"
#define TO "bob@example.net"

struct setting {
	enum props_scope scope;
	const char	*key, *name, *value;
};

struct policy_case {
	const char		*what;
	struct setting		 set[6];
	const char		*from;
	const char		*subject;
	const char		*headers;	/* raw, CRLF lines */
	int			 cert;		/* has_cert answer */
	enum policy_action	 action;
	int			 sign, mandatory;
	const char		*rule[4];	/* substrings of the rule */
};

#define PORTAL	{ G, NULL, "remote-portal-enabled", "true" }
#define MAND	{ D, "example.net", "encrypt-mode", "mandatory" }
#define WEBMAIL	{ G, NULL, "webmail-enabled", "true" }
#define PDF	{ U, TO, "pdf-otp-enabled", "true" }
#define STRIG	{ U, FROM, "subject-trigger-enabled", "true" }
#define SIGN	{ U, FROM, "sign-enabled", "true" }

static const struct policy_case cases[] = {
	{ "defaults relay in clear", { { 0 } }, FROM, "hi", NULL, 0,
	  POLICY_RELAY, 0, 0,
	  { "encrypt-mode=allow (default)", "no valid certificate for " TO,
	    "sign-enabled=false (default)" } },
	{ "internal domain passes untouched",
	  { { D, "example.net", "locality", "internal" }, MAND, WEBMAIL,
	    PORTAL }, FROM, "[encrypt] x", NULL, 1,
	  POLICY_PASS, 0, 0, { "locality=internal (domain example.net)" } },
	{ "internal user passes untouched",
	  { { U, TO, "locality", "internal" } }, FROM, "x", NULL, 1,
	  POLICY_PASS, 0, 0, { "locality=internal (user " TO ")" } },
	{ "allow with a certificate encrypts", { { 0 } }, FROM, "x", NULL, 1,
	  POLICY_ENCRYPT, 0, 0,
	  { "encrypt-mode=allow (default)", "valid certificate for " TO } },
	{ "sender's sign-enabled signs the encrypted copy", { SIGN }, FROM,
	  "x", NULL, 1, POLICY_ENCRYPT, 1, 0,
	  { "sign-enabled=true (user " FROM ")" } },
	{ "recipient's sign-enabled does not sign",
	  { { U, TO, "sign-enabled", "true" } }, FROM, "x", NULL, 0,
	  POLICY_RELAY, 0, 0, { "sign-enabled=false (default)" } },
	{ "sender's sign-enabled signs clear mail", { SIGN }, FROM, "x",
	  NULL, 0, POLICY_SIGN, 1, 0, { "sign-enabled=true (user " FROM ")" } },
	{ "mandatory with a certificate encrypts", { MAND }, FROM, "x", NULL,
	  1, POLICY_ENCRYPT, 0, 1,
	  { "encrypt-mode=mandatory (domain example.net)" } },
	{ "mandatory without any method is refused", { MAND }, FROM, "x",
	  NULL, 0, POLICY_REFUSE, 0, 1,
	  { "encrypt-mode=mandatory (domain example.net)",
	    "no valid certificate", "webmail-enabled=false (default)",
	    "pdf-otp-enabled=false (default)" } },
	{ "mandatory goes to webmail", { MAND, WEBMAIL, PORTAL }, FROM, "x",
	  NULL, 0, POLICY_PORTAL_WEBMAIL, 0, 1,
	  { "encrypt-mode=mandatory (domain example.net)",
	    "webmail-enabled=true (global)",
	    "remote-portal-enabled=true (global)" } },
	{ "webmail needs remote-portal-enabled", { MAND, WEBMAIL }, FROM,
	  "x", NULL, 0, POLICY_REFUSE, 0, 1,
	  { "webmail-enabled=true (global)",
	    "remote-portal-enabled=false (default)" } },
	{ "webmail only if mandatory", { WEBMAIL, PORTAL }, FROM, "x", NULL,
	  0, POLICY_RELAY, 0, 0,
	  { "webmail-only-if-mandatory=true and encryption is not "
	    "mandatory" } },
	{ "webmail for allow when not only-if-mandatory",
	  { WEBMAIL, PORTAL,
	    { D, "example.net", "webmail-only-if-mandatory", "false" } },
	  FROM, "x", NULL, 0, POLICY_PORTAL_WEBMAIL, 0, 0,
	  { "encrypt-mode=allow (default)", "webmail-enabled=true (global)" } },
	{ "mandatory goes to pdf otp", { MAND, PDF, PORTAL }, FROM, "x",
	  NULL, 0, POLICY_PORTAL_PDF, 0, 1,
	  { "pdf-otp-enabled=true (user " TO ")",
	    "remote-portal-enabled=true (global)" } },
	{ "pdf otp only if mandatory", { PDF, PORTAL }, FROM, "x", NULL, 0,
	  POLICY_RELAY, 0, 0,
	  { "pdf-otp-only-if-mandatory=true and encryption is not "
	    "mandatory" } },
	{ "the portal offers webmail before pdf otp",
	  { MAND, WEBMAIL, PDF, PORTAL },
	  FROM, "x", NULL, 0, POLICY_PORTAL_WEBMAIL, 0, 1, { NULL } },
	{ "encryption-method-order can put the portal first",
	  { MAND, WEBMAIL, PORTAL,
	    { G, NULL, "encryption-method-order", "portal,smime,pgp,pdf" } },
	  FROM, "x", NULL, 1, POLICY_PORTAL_WEBMAIL, 0, 1,
	  { "encryption-method-order=portal,smime,pgp,pdf (global)" } },
	{ "a certificate is preferred to the portal",
	  { MAND, WEBMAIL, PDF, PORTAL }, FROM, "x", NULL, 1, POLICY_ENCRYPT,
	  0, 1, { "valid certificate for " TO } },
	{ "subject trigger makes it mandatory", { STRIG, WEBMAIL, PORTAL },
	  FROM, "Re: [Encrypt] offer", NULL, 0, POLICY_PORTAL_WEBMAIL, 0, 1,
	  { "subject-trigger-enabled=true (user " FROM ")",
	    "subject matches subject-trigger=\\[encrypt\\] (default)" } },
	{ "subject trigger without the tag", { STRIG, WEBMAIL, PORTAL }, FROM,
	  "offer", NULL, 0, POLICY_RELAY, 0, 0, { NULL } },
	{ "subject trigger is off by default", { WEBMAIL, PORTAL }, FROM,
	  "[encrypt] offer", NULL, 0, POLICY_RELAY, 0, 0, { NULL } },
	{ "subject trigger is the sender's setting",
	  { { U, TO, "subject-trigger-enabled", "true" }, WEBMAIL, PORTAL },
	  FROM, "[encrypt] offer", NULL, 0, POLICY_RELAY, 0, 0, { NULL } },
	{ "custom subject trigger, case-insensitive, no method: refused",
	  { { D, "example.com", "subject-trigger-enabled", "true" },
	    { G, NULL, "subject-trigger", "^secure:" } },
	  FROM, "SECURE: payroll", NULL, 0, POLICY_REFUSE, 0, 1,
	  { "subject-trigger-enabled=true (domain example.com)",
	    "subject-trigger=^secure: (global)" } },
	{ "header trigger makes it mandatory",
	  { { G, NULL, "encrypt-header-trigger", "X-Secure: yes" } }, FROM,
	  "x", "X-Secure:   YES \r\n", 0, POLICY_REFUSE, 0, 1,
	  { "header matches encrypt-header-trigger=X-Secure: yes (global)" } },
	{ "header trigger with another value",
	  { { G, NULL, "encrypt-header-trigger", "X-Secure: yes" } }, FROM,
	  "x", "X-Secure: no\r\n", 0, POLICY_RELAY, 0, 0, { NULL } },
	{ "header trigger off when empty", { { 0 } }, FROM, "x",
	  "X-Secure: yes\r\n", 0, POLICY_RELAY, 0, 0, { NULL } },
	{ "no-encryption ignores the certificate",
	  { { U, TO, "encrypt-mode", "no-encryption" } }, FROM, "x", NULL, 1,
	  POLICY_RELAY, 0, 0, { "encrypt-mode=no-encryption (user " TO ")" } },
	{ "no-encryption ignores triggers and the portal",
	  { { D, "example.net", "encrypt-mode", "no-encryption" }, STRIG,
	    WEBMAIL, PORTAL, SIGN }, FROM, "[encrypt] x", NULL, 0,
	  POLICY_SIGN, 1, 0,
	  { "encryption trigger ignored", "sign-enabled=true" } },
	{ "the null sender has the global settings",
	  { { G, NULL, "sign-enabled", "true" } }, "", "x", NULL, 0,
	  POLICY_SIGN, 1, 0, { "sign-enabled=true (global)" } },
	{ "user level wins over domain level",
	  { MAND, { U, TO, "encrypt-mode", "allow" } }, FROM, "x", NULL, 0,
	  POLICY_RELAY, 0, 0, { "encrypt-mode=allow (user " TO ")" } },
};

/* Empties every property table between cases. */
static void
reset(struct fixture *f)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM props_global;"
	    "DELETE FROM props_domain; DELETE FROM props_user;", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
apply(struct props *p, const struct setting *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i].name != NULL; i++) {
		char *err = NULL;

		if (props_set(p, s[i].scope, s[i].key, s[i].name, s[i].value,
		    &err) != 0)
			fail_msg("set %s=%s: %s", s[i].name, s[i].value, err);
	}
}

struct cert_answer {
	int	 answer;
	int	 asked;
};

static int
has_cert(void *arg, const char *rcpt)
{
	struct cert_answer *a = arg;

	assert_string_equal(rcpt, TO);
	a->asked++;
	return a->answer;
}

static void
test_policy_table(void **state)
{
	struct fixture *f = *state;
	size_t i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct policy_case *c = &cases[i];
		struct cert_answer ca = { c->cert, 0 };
		struct policy_decision d;
		struct policy_msg m;
		struct header h;
		char raw[512];

		memset(&m, 0, sizeof(m));
		reset(f);
		apply(f->p, c->set, 6);
		snprintf(raw, sizeof(raw), "From: <%s>\r\n%s\r\n", FROM,
		    c->headers ? c->headers : "");
		assert_int_equal(header_parse_mem(raw, strlen(raw), 4096, &h),
		    0);
		m.from = c->from;
		m.subject = c->subject;
		m.hdr = &h;
		if (policy_decide(f->p, &m, TO, has_cert, &ca, &d) != 0)
			fail_msg("%s: policy_decide failed", c->what);
		header_free(&h);
		if (d.action != c->action || d.sign != c->sign ||
		    d.mandatory != c->mandatory)
			fail_msg("%s: got %s sign=%d mandatory=%d, want %s "
			    "sign=%d mandatory=%d (rule: %s)", c->what,
			    policy_action_name(d.action), d.sign, d.mandatory,
			    policy_action_name(c->action), c->sign,
			    c->mandatory, d.rule);
		for (j = 0; j < 4 && c->rule[j] != NULL; j++)
			if (strstr(d.rule, c->rule[j]) == NULL)
				fail_msg("%s: rule \"%s\" lacks \"%s\"",
				    c->what, d.rule, c->rule[j]);
		if (d.action == POLICY_REFUSE)
			assert_non_null(strstr(d.reason, "mandatory"));
		else
			assert_string_equal(d.reason, "");
	}
}

/* Without a certificate callback nobody has a certificate. */
static void
test_no_cert_callback(void **state)
{
	struct fixture *f = *state;
	struct policy_msg m = { .from = FROM, .subject = "x" };
	struct policy_decision d;

	assert_int_equal(policy_decide(f->p, &m, TO, NULL, NULL, &d), 0);
	assert_int_equal(d.action, POLICY_RELAY);
}

/* A failed lookup is an error, never a decision to send in clear. */
static void
test_lookup_failure(void **state)
{
	struct fixture *f = *state;
	struct cert_answer ca = { -1, 0 };
	struct policy_msg m = { .from = FROM, .subject = "x" };
	struct policy_decision d;
	sqlite3 *db;

	assert_int_equal(policy_decide(f->p, &m, TO, has_cert, &ca, &d), -1);
	assert_int_equal(ca.asked, 1);

	ca.answer = 0;
	apply(f->p, (struct setting[]){ MAND }, 1);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE props_domain SET value = "
	    "'sometimes'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(policy_decide(f->p, &m, TO, has_cert, &ca, &d), -1);
}

/* A long rule is cut with "..." and stays a C string. */
static void
test_rule_truncated(void **state)
{
	struct fixture *f = *state;
	struct policy_msg m = { .from = FROM, .subject = "[encrypt] x" };
	struct policy_decision d;
	struct header h;
	char longval[400], raw[600];

	memset(longval, 'v', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	snprintf(raw, sizeof(raw), "X-Long-Trigger-Name: %s", longval);
	apply(f->p, (struct setting[]){ STRIG,
	    { G, NULL, "encrypt-header-trigger", raw } }, 2);
	snprintf(raw, sizeof(raw), "X-Long-Trigger-Name: %s\r\n\r\n", longval);
	assert_int_equal(header_parse_mem(raw, strlen(raw), 4096, &h), 0);
	m.hdr = &h;
	assert_int_equal(policy_decide(f->p, &m, TO, NULL, NULL, &d), 0);
	header_free(&h);
	assert_int_equal(d.action, POLICY_REFUSE);
	assert_true(strlen(d.rule) < sizeof(d.rule));
	assert_string_equal(d.rule + strlen(d.rule) - 3, "...");
}

static void
test_subject_strip(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *subject, *want;
	} strip[] = {
		{ "[encrypt] Hello", "Hello" },
		{ "Hello [ENCRYPT] world", "Hello world" },
		{ "Re: [encrypt]", "Re:" },
		{ "[encrypt] a [encrypt] b", "a b" },
		{ "[encrypt]", "" },
		{ "no tag here", NULL },
		{ "encrypt without brackets", NULL },
	};
	size_t i;
	char *s;

	/* Off unless the sender enabled the trigger. */
	assert_null(policy_subject_strip(f->p, FROM, "[encrypt] Hello"));
	apply(f->p, (struct setting[]){ STRIG }, 1);
	assert_null(policy_subject_strip(f->p, "carol@example.com",
	    "[encrypt] Hello"));
	for (i = 0; i < sizeof(strip) / sizeof(strip[0]); i++) {
		s = policy_subject_strip(f->p, FROM, strip[i].subject);
		if (strip[i].want == NULL) {
			if (s != NULL)
				fail_msg("\"%s\" became \"%s\"",
				    strip[i].subject, s);
			continue;
		}
		if (s == NULL || strcmp(s, strip[i].want) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"",
			    strip[i].subject, s ? s : "(unchanged)",
			    strip[i].want);
		free(s);
	}
	/* A custom pattern. */
	apply(f->p, (struct setting[]){
	    { U, FROM, "subject-trigger", "\\{(secure|s)\\}" } }, 1);
	s = policy_subject_strip(f->p, FROM, "{S} salary");
	assert_non_null(s);
	assert_string_equal(s, "salary");
	free(s);
	/* Kept when subject-trigger-remove-pattern is false. */
	apply(f->p, (struct setting[]){
	    { G, NULL, "subject-trigger-remove-pattern", "false" } }, 1);
	assert_null(policy_subject_strip(f->p, FROM, "{secure} salary"));
	assert_null(policy_subject_strip(f->p, FROM, NULL));
}

static void
test_action_names(void **state)
{
	(void)state;
	assert_string_equal(policy_action_name(POLICY_PASS), "pass");
	assert_string_equal(policy_action_name(POLICY_ENCRYPT), "encrypt");
	assert_string_equal(policy_action_name(POLICY_PORTAL_WEBMAIL),
	    "portal-webmail");
	assert_string_equal(policy_action_name(POLICY_PORTAL_PDF),
	    "portal-pdf");
	assert_string_equal(policy_action_name(POLICY_REFUSE), "refuse");
	assert_string_equal(policy_action_name(POLICY_PGP), "pgp");
}

/* The OpenPGP method: pgp-enabled, the key callback and the order. */
static int
has_pgp(void *arg, const char *rcpt)
{
	(void)rcpt;
	return *(int *)arg;
}

static void
test_pgp_method(void **state)
{
	static const struct {
		const char		*what;
		struct setting		 set[3];
		int			 cert, key;
		enum policy_action	 action;
		const char		*rule;
	} pc[] = {
		{ "a key without pgp-enabled relays", { { 0 } }, 0, 1,
		  POLICY_RELAY, NULL },
		{ "pgp-enabled with a key encrypts",
		  { { D, "example.net", "pgp-enabled", "true" } }, 0, 1,
		  POLICY_PGP, "usable OpenPGP key for " TO },
		{ "pgp-enabled without a key relays",
		  { { G, NULL, "pgp-enabled", "true" } }, 0, 0, POLICY_RELAY,
		  "no usable OpenPGP key for " TO },
		{ "S/MIME comes first by default",
		  { { G, NULL, "pgp-enabled", "true" } }, 1, 1,
		  POLICY_ENCRYPT, "valid certificate" },
		{ "the order can put pgp first",
		  { { G, NULL, "pgp-enabled", "true" },
		    { U, TO, "encryption-method-order", "pgp, smime" } }, 1, 1,
		  POLICY_PGP, "encryption-method-order=pgp,smime (user" },
		{ "a method left out of the order is not used",
		  { { G, NULL, "pgp-enabled", "true" },
		    { U, TO, "encryption-method-order", "smime,portal" } }, 0,
		  1, POLICY_RELAY, NULL },
		{ "pgp comes before the portal",
		  { { G, NULL, "pgp-enabled", "true" }, WEBMAIL, MAND }, 0, 1,
		  POLICY_PGP, NULL },
	};
	struct fixture *f = *state;
	struct policy_decision d;
	struct policy_msg m;

	for (size_t i = 0; i < sizeof(pc) / sizeof(pc[0]); i++) {
		struct cert_answer ca = { pc[i].cert, 0 };
		int key = pc[i].key;

		reset(f);
		apply(f->p, pc[i].set, 3);
		memset(&m, 0, sizeof(m));
		m.from = FROM;
		m.has_pgp = has_pgp;
		m.pgp_arg = &key;
		if (policy_decide(f->p, &m, TO, has_cert, &ca, &d) != 0)
			fail_msg("%s: policy_decide failed", pc[i].what);
		if (d.action != pc[i].action)
			fail_msg("%s: got %s (rule: %s)", pc[i].what,
			    policy_action_name(d.action), d.rule);
		if (pc[i].rule != NULL && strstr(d.rule, pc[i].rule) == NULL)
			fail_msg("%s: rule \"%s\" lacks \"%s\"", pc[i].what,
			    d.rule, pc[i].rule);
	}
	/* A hand-edited order with an unknown method fails the lookup
	 * (postern-cli refuses to set it). */
	reset(f);
	{
		sqlite3 *db;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "INSERT INTO props_global "
		    "(name, value) VALUES ('encryption-method-order', "
		    "'smime,carrier-pigeon')", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	memset(&m, 0, sizeof(m));
	m.from = FROM;
	assert_int_equal(policy_decide(f->p, &m, TO, NULL, NULL, &d), -1);
}

static void
test_method_order_parse(void **state)
{
	enum policy_method o[POLICY_MAX_METHODS];
	int n;

	(void)state;
	assert_int_equal(policy_method_order("smime,pgp,pdf,portal", o, &n),
	    0);
	assert_int_equal(n, 4);
	assert_int_equal(o[1], POLICY_M_PGP);
	assert_int_equal(policy_method_order(" pgp , smime", o, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(o[0], POLICY_M_PGP);
	assert_int_equal(policy_method_order("pgp,pgp", o, &n), -1);
	assert_int_equal(policy_method_order("", o, &n), -1);
	assert_int_equal(policy_method_order("smime,gpg", o, &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_policy_table, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_cert_callback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lookup_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rule_truncated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subject_strip, setup,
		    teardown),
		cmocka_unit_test(test_action_names),
		cmocka_unit_test_setup_teardown(test_pgp_method, setup,
		    teardown),
		cmocka_unit_test(test_method_order_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
