/*
 * The message page's rendering cache: an entry is found only with its
 * owner and store file; another owner or file gets nothing and removes
 * it; a dropped entry is gone; the whole cache stays under its bound,
 * the least recently used out first; an entry past the size limit is
 * not kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "web/web_mail_cache.h"
#include "xmalloc.h"

static void
render(struct web_mail_render *r, const char *body, size_t pad)
{
	memset(r, 0, sizeof(*r));
	r->title = xstrdup("Subject");
	r->head = xstrdup("<dl></dl>");
	r->body = xmalloc(strlen(body) + pad + 1);
	memcpy(r->body, body, strlen(body));
	memset(r->body + strlen(body), 'x', pad);
	r->body[strlen(body) + pad] = '\0';
	r->att = xstrdup("<ul></ul>");
}

static void
test_owner_and_file(void **state)
{
	struct web_mail_render in, out;

	(void)state;
	render(&in, "secret", 0);
	web_mail_cache_put(1, "a@example.org", "/s/m1", &in);
	assert_int_equal(web_mail_cache_get(1, "a@example.org", "/s/m1", &out),
	    0);
	assert_string_equal(out.body, "secret");
	assert_string_equal(out.title, "Subject");
	web_mail_render_free(&out);
	/* Another owner: nothing, and the entry is gone for everyone. */
	assert_int_equal(web_mail_cache_get(1, "b@example.org", "/s/m1", &out),
	    -1);
	assert_null(out.body);
	assert_int_equal(web_mail_cache_get(1, "a@example.org", "/s/m1", &out),
	    -1);
	/* Another file under the same id: the same. */
	web_mail_cache_put(1, "a@example.org", "/s/m1", &in);
	assert_int_equal(web_mail_cache_get(1, "a@example.org", "/s/m2", &out),
	    -1);
	assert_int_equal(web_mail_cache_get(1, "a@example.org", "/s/m1", &out),
	    -1);
	/* Dropped: gone. */
	web_mail_cache_put(2, "a@example.org", "/s/m3", &in);
	web_mail_cache_drop(2);
	assert_int_equal(web_mail_cache_get(2, "a@example.org", "/s/m3", &out),
	    -1);
	web_mail_render_free(&in);
}

static void
test_bounded(void **state)
{
	struct web_mail_render in, out;
	size_t bytes, n;
	char name[32];

	(void)state;
	/* Too large for one entry: not kept. */
	render(&in, "big", WEB_MAIL_CACHE_ENTRY);
	web_mail_cache_put(10, "a@example.org", "/s/big", &in);
	assert_int_equal(web_mail_cache_get(10, "a@example.org", "/s/big",
	    &out), -1);
	web_mail_render_free(&in);
	/* Many entries: the bound holds, the oldest go first. */
	render(&in, "page", 100 * 1024);
	for (int64_t id = 100; id < 300; id++) {
		snprintf(name, sizeof(name), "/s/%lld", (long long)id);
		web_mail_cache_put(id, "a@example.org", name, &in);
		/* 101 stays in use, so it stays in. */
		if (id > 101 && web_mail_cache_get(101, "a@example.org",
		    "/s/101", &out) == 0)
			web_mail_render_free(&out);
	}
	web_mail_cache_stats(&bytes, &n);
	assert_true(bytes <= WEB_MAIL_CACHE_MAX);
	assert_true(n > 0 && n < 200);
	assert_int_equal(web_mail_cache_get(100, "a@example.org", "/s/100",
	    &out), -1);
	assert_int_equal(web_mail_cache_get(101, "a@example.org", "/s/101",
	    &out), 0);
	web_mail_render_free(&out);
	assert_int_equal(web_mail_cache_get(299, "a@example.org", "/s/299",
	    &out), 0);
	web_mail_render_free(&out);
	for (int64_t id = 100; id < 300; id++)
		web_mail_cache_drop(id);
	web_mail_cache_stats(&bytes, &n);
	assert_int_equal(n, 0);
	assert_int_equal(bytes, 0);
	web_mail_render_free(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_and_file),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
