/*
 * The HTML mail sanitiser and the text helpers it stands on: golden files
 * we wrote (tests/fixtures/html, one file per attack class), then every
 * payload of the public XSS corpora (outside the project, see corpora.h),
 * each output re-parsed with gumbo and
 * checked element by element, attribute by attribute.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include <gumbo.h>

#include "corpora.h"
#include "web/web_sanitize.h"
#include "web/web_text.h"

#define FIXTURES	"tests/fixtures/html"

static char *
cid_map(void *arg, const char *cid)
{
	char *s;

	(void)arg;
	if (strncmp(cid, "unknown", 7) == 0)
		return NULL;
	if (asprintf(&s, "/message/1/cid/%s", cid) == -1)
		abort();
	return s;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* --- the independent checker ------------------------------------------- */

static int
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcasecmp(s, *list) == 0)
			return 1;
	return 0;
}

static const char *const ok_tags[] = { "a", "abbr", "acronym", "address",
    "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
    "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins",
    "kbd", "li", "main", "mark", "nav", "ol", "p", "pre", "q", "s", "samp",
    "section", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
    "wbr", "html", "head", "body", NULL };

static const char *const ok_attrs[] = { "align", "valign", "dir", "lang",
    "title", "width", "height", "bgcolor", "style", "href", "rel", "target",
    "src", "alt", "border", "hspace", "vspace", "face", "size", "color",
    "cellpadding", "cellspacing", "summary", "frame", "rules", "colspan",
    "rowspan", "nowrap", "scope", "headers", "abbr", "span", "start", "type",
    "reversed", "value", "noshade", "datetime", "data-postern-blocked",
    "data-postern-src", NULL };

struct verdict {
	int	 bad;
	char	 why[256];
};

static void
flag(struct verdict *v, const char *what, const char *detail)
{
	if (!v->bad)
		snprintf(v->why, sizeof(v->why), "%s: %.200s", what, detail);
	v->bad = 1;
}

static int
url_safe(const char *attr, const char *u, int remote_ok)
{
	static const char *const imgs[] = { "data:image/png;base64,",
	    "data:image/gif;base64,", "data:image/jpeg;base64,",
	    "data:image/webp;base64,", NULL };

	if (strcmp(attr, "href") == 0)
		return strncasecmp(u, "http://", 7) == 0 ||
		    strncasecmp(u, "https://", 8) == 0 ||
		    strncasecmp(u, "mailto:", 7) == 0;
	if (strncmp(u, "/message/", 9) == 0)
		return 1;
	for (int i = 0; imgs[i]; i++)
		if (strncasecmp(u, imgs[i], strlen(imgs[i])) == 0)
			return strpbrk(u + strlen(imgs[i]), "\"'<>():") == NULL;
	return remote_ok && (strncasecmp(u, "http://", 7) == 0 ||
	    strncasecmp(u, "https://", 8) == 0);
}

static void
check_node(const GumboNode *n, int remote_ok, struct verdict *v)
{
	const GumboElement	*e;
	unsigned int		 i;

	if (n->type == GUMBO_NODE_COMMENT) {
		flag(v, "comment", n->v.text.text);
		return;
	}
	if (n->type != GUMBO_NODE_ELEMENT)
		return;
	e = &n->v.element;
	if (e->tag_namespace != GUMBO_NAMESPACE_HTML)
		flag(v, "foreign element", gumbo_normalized_tagname(e->tag));
	if (e->tag == GUMBO_TAG_UNKNOWN ||
	    !in_list(gumbo_normalized_tagname(e->tag), ok_tags))
		flag(v, "element", e->tag == GUMBO_TAG_UNKNOWN ? "(unknown)" :
		    gumbo_normalized_tagname(e->tag));
	for (i = 0; i < e->attributes.length; i++) {
		const GumboAttribute *a = e->attributes.data[i];
		char *low;

		if (!in_list(a->name, ok_attrs) ||
		    strncasecmp(a->name, "on", 2) == 0)
			flag(v, "attribute", a->name);
		if ((strcmp(a->name, "href") == 0 || strcmp(a->name, "src") ==
		    0) && !url_safe(a->name, a->value, remote_ok))
			flag(v, "url", a->value);
		if (strcmp(a->name, "style") == 0) {
			low = strdup(a->value);
			for (char *p = low; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (strstr(low, "url(") || strstr(low, "expression") ||
			    strstr(low, "script") || strstr(low, "@import") ||
			    strchr(low, '\\') || strstr(low, "image"))
				flag(v, "style", a->value);
			free(low);
		}
	}
	if (e->tag == GUMBO_TAG_A) {
		const GumboAttribute *rel = gumbo_get_attribute(&e->attributes,
		    "rel");

		if (rel == NULL || strcmp(rel->value, "noopener noreferrer"))
			flag(v, "a without rel", "");
	}
	for (i = 0; i < e->children.length; i++)
		check_node(e->children.data[i], remote_ok, v);
}

/* Re-parses sanitiser output the way a browser would and checks it. */
static struct verdict
check_output(const char *out, int remote_ok)
{
	struct verdict	 v = { 0, "" };
	GumboOutput	*g;

	g = gumbo_parse(out);
	check_node(g->root, remote_ok, &v);
	gumbo_destroy_output(&kGumboDefaultOptions, g);
	return v;
}

/* Sanitises one payload both ways and checks both outputs. */
static int
check_payload(const char *src, const char *payload, size_t len)
{
	struct web_sanitize_opts o = { .cid_url = cid_map };
	struct verdict	 v;
	char		*out, *again;
	int		 remote, fails = 0;

	for (int show = 0; show <= 1; show++) {
		o.show_remote_images = show;
		out = web_sanitize_html(payload, len, &o, &remote);
		assert_non_null(out);
		v = check_output(out, show);
		if (v.bad) {
			print_error("%s: %s\n  payload: %.300s\n  output: %.300s\n",
			    src, v.why, payload, out);
			fails++;
		}
		/* Sanitising our own output must not find anything new. */
		again = web_sanitize_html(out, strlen(out), &o, NULL);
		v = check_output(again, show);
		if (v.bad) {
			print_error("%s (second pass): %s\n", src, v.why);
			fails++;
		}
		free(again);
		free(out);
	}
	return fails;
}

/* --- golden files -------------------------------------------------------- */

/*
 * Every NAME.html in the fixtures folder against its NAME.expected, and
 * through the independent checker. Besides the real-world layouts there is
 * one file per attack class the public corpora exercise (attacks, mxss,
 * svg-mathml, css, srcset, base-meta, forms, urls), so a clone without the
 * corpora still tests the sanitiser in earnest.
 */
static void
test_golden(void **state)
{
	static const char *const required[] = { "newsletter", "plain-quirks",
	    "attacks", "mxss", "svg-mathml", "css", "srcset", "base-meta",
	    "forms", "urls", NULL };
	struct web_sanitize_opts o = { .cid_url = cid_map };
	struct dirent **ents;
	char	 path[512], *in, *want, *out;
	size_t	 inlen, wantlen, len;
	int	 remote, n, done = 0;

	(void)state;
	for (int i = 0; required[i]; i++) {
		snprintf(path, sizeof(path), FIXTURES "/%s.html", required[i]);
		if (access(path, R_OK) != 0)
			fail_msg("fixture %s is missing", path);
	}
	n = scandir(FIXTURES, &ents, NULL, alphasort);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;

		len = strlen(name);
		if (len > 5 && strcmp(name + len - 5, ".html") == 0) {
			snprintf(path, sizeof(path), FIXTURES "/%s", name);
			in = slurp(path, &inlen);
			assert_non_null(in);
			snprintf(path, sizeof(path), FIXTURES "/%.*s.expected",
			    (int)(len - 5), name);
			want = slurp(path, &wantlen);
			if (want == NULL)
				fail_msg("%s has no .expected file", name);
			out = web_sanitize_html(in, inlen, &o, &remote);
			assert_non_null(out);
			if (strcmp(out, want) != 0)
				print_error("%s differs:\n%s\n", name, out);
			assert_string_equal(out, want);
			assert_int_equal(check_payload(name, in, inlen), 0);
			free(in);
			free(want);
			free(out);
			done++;
		}
		free(ents[i]);
	}
	free(ents);
	assert_true(done >= 10);
}

struct case_ {
	const char	*in;
	int		 show_remote;
	const char	*want;
	int		 remote;
};

static const struct case_ cases[] = {
	{ "<b>x</b>", 0, "<b>x</b>", 0 },
	{ "<script>alert(1)</script>ok", 0, "ok", 0 },
	{ "<img src=\"https://r.example/a.png\" alt=a>", 0,
	    "<img data-postern-blocked=\"remote\" alt=\"a\">", 1 },
	{ "<img src=\"https://r.example/a.png\" alt=a>", 1,
	    "<img src=\"https://r.example/a.png\" alt=\"a\">", 1 },
	{ "<img src=\"cid:p1@x\">", 0, "<img src=\"/message/1/cid/p1@x\">",
	    0 },
	{ "<a href=\"https://x.example/\" target=\"_top\">l</a>", 0,
	    "<a href=\"https://x.example/\" rel=\"noopener noreferrer\" "
	    "target=\"_blank\">l</a>", 0 },
	{ "<a href=\"javascript:alert(1)\">l</a>", 0,
	    "<a rel=\"noopener noreferrer\" target=\"_blank\">l</a>", 0 },
	{ "<p onclick=\"x()\" id=\"i\" class=\"c\">p</p>", 0, "<p>p</p>", 0 },
	{ "<div style=\"color: red; background: url(x)\">d</div>", 0,
	    "<div style=\"color: red\">d</div>", 0 },
	{ "<iframe src=\"https://x\"></iframe><object></object>t", 0, "t", 0 },
	{ "<svg><script>alert(1)</script></svg>s", 0, "s", 0 },
	{ "<form><input value=\"v\"><button>b</button></form>", 0, "b", 0 },
	{ "<unknown-el>u</unknown-el>", 0, "u", 0 },
	{ "a &lt;b&gt; \"c\" 'd' &amp;", 0,
	    "a &lt;b&gt; &quot;c&quot; &#39;d&#39; &amp;", 0 },
	{ "<td background=\"https://x/t.png\">c", 0, "c", 0 },
};

static void
test_cases(void **state)
{
	struct web_sanitize_opts o = { .cid_url = cid_map };
	char	*out;
	int	 remote;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o.show_remote_images = cases[i].show_remote;
		out = web_sanitize_html(cases[i].in, strlen(cases[i].in), &o,
		    &remote);
		assert_non_null(out);
		assert_string_equal(out, cases[i].want);
		assert_int_equal(remote, cases[i].remote);
		free(out);
	}
}

static void
test_blocked_src_kept_on_request(void **state)
{
	struct web_sanitize_opts o = { .keep_blocked_src = 1 };
	const char *in = "<img src=\"https://r.example/a.png\">";
	char	*out;

	(void)state;
	out = web_sanitize_html(in, strlen(in), &o, NULL);
	assert_string_equal(out, "<img data-postern-blocked=\"remote\" "
	    "data-postern-src=\"https://r.example/a.png\">");
	free(out);
}

static void
test_css(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "color: red", "color: red" },
		{ "COLOR:Red;;font-weight:bold", "color: Red; font-weight: bold" },
		{ "font-family: \"Times New Roman\", serif",
		    "font-family: \"Times New Roman\", serif" },
		{ "color: rgb(1, 2, 3); margin-left: 4px",
		    "color: rgb(1, 2, 3); margin-left: 4px" },
		{ "width: expression(alert(1))", "" },
		{ "background: url(https://x/)", "" },
		{ "background: u\\72l(https://x/)", "" },
		{ "background-image: image-set('x' 1x)", "" },
		{ "color: red; -moz-binding: url(x)", "color: red" },
		{ "position: fixed; top: 0", "" },
		{ "behavior: url(x.htc)", "" },
		{ "color: red /* x */", "" },
		{ "color: red !important", "color: red !important" },
		{ "width: calc(100% - 1px)", "" },
		{ "font: 12px/1.5 Arial", "font: 12px/1.5 Arial" },
		{ "color: \"unterminated", "" },
		{ "color:red;background:blue);width:1px", "color: red" },
	};
	char	*out;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		out = web_sanitize_css(c[i].in);
		if (strcmp(out, c[i].want) != 0)
			print_error("css %s -> %s\n", c[i].in, out);
		assert_string_equal(out, c[i].want);
		free(out);
	}
}

static void
test_limits(void **state)
{
	struct web_sanitize_opts o = { .max_input = 100 };
	char	 big[200], *deep, *out;
	size_t	 n = 100000;

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_null(web_sanitize_html(big, sizeof(big), &o, NULL));
	/* Deep nesting would make gumbo quadratic: refused up front. */
	deep = malloc(5 * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(deep + 5 * i, "<div>", 5);
	deep[5 * n] = '\0';
	assert_null(web_sanitize_html(deep, 5 * n, NULL, NULL));
	/* Depth within the budget but past the walker's: unwrapped. */
	n = 2000;
	for (size_t i = 0; i < n; i++)
		memcpy(deep + 5 * i, "<div>", 5);
	deep[5 * n] = 'x';
	out = web_sanitize_html(deep, 5 * n + 1, NULL, NULL);
	assert_non_null(out);
	assert_non_null(strstr(out, "x"));
	free(out);
	free(deep);
}

/* --- corpora --------------------------------------------------------------- */

/* Decodes the JSON string starting after the opening quote at *pp. */
static char *
json_string(const char **pp, size_t *len)
{
	const char	*p = *pp;
	char		*o = malloc(strlen(p) * 4 + 1);
	size_t		 n = 0;

	while (*p && *p != '"') {
		if (*p != '\\') {
			o[n++] = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': o[n++] = '\n'; break;
		case 't': o[n++] = '\t'; break;
		case 'r': o[n++] = '\r'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'u': {
			unsigned int cp = 0, lo;

			sscanf(p + 1, "%4x", &cp);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' &&
			    p[2] == 'u' && sscanf(p + 3, "%4x", &lo) == 1) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				p += 6;
			}
			if (cp < 0x80)
				o[n++] = (char)cp;
			else if (cp < 0x800) {
				o[n++] = (char)(0xc0 | cp >> 6);
				o[n++] = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				o[n++] = (char)(0xe0 | cp >> 12);
				o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				o[n++] = (char)(0x80 | (cp & 0x3f));
			} else {
				o[n++] = (char)(0xf0 | cp >> 18);
				o[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				o[n++] = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default: o[n++] = *p; break;
		}
		if (*p)
			p++;
	}
	o[n] = '\0';
	*pp = p;
	*len = n;
	return o;
}

/* Checks every "key": "..." string in a JSON file; returns payload count. */
static int
corpus_json(const char *file, const char *key, int *fails)
{
	char	 path[512], pat[64], *buf, *s;
	const char *p;
	size_t	 len, n;
	int	 count = 0;

	snprintf(path, sizeof(path), "%s/%s", corpora_dir(), file);
	if ((buf = slurp(path, &len)) == NULL)
		corpora_missing(path);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (p = buf; (p = strstr(p, pat)) != NULL; ) {
		p += strlen(pat);
		while (*p == ' ' || *p == '\n')
			p++;
		if (*p != '"')
			continue;
		p++;
		s = json_string(&p, &n);
		*fails += check_payload(file, s, n);
		free(s);
		count++;
	}
	free(buf);
	return count;
}

static void
test_corpora(void **state)
{
	static const char *const whole[] = { "roundcube-washtml/htmlxss.txt",
	    "roundcube-washtml/htmlbase.txt",
	    "roundcube-washtml/BID-26800.ascii-subset.txt", "h5sc/vectors.txt",
	    NULL };
	char	 path[512], *buf, *line, *save, payload[512];
	size_t	 len;
	int	 fails = 0, total = 0, n;

	(void)state;
	snprintf(path, sizeof(path), "%s/README.md", corpora_dir());
	if (access(path, R_OK) != 0)
		corpora_missing(path);
	total += corpus_json("dompurify/expect.json", "payload", &fails);
	total += corpus_json("owasp-xss/owasp-xss-filter-evasion.json",
	    "payload", &fails);
	total += corpus_json("h5sc/h5sc-vectors.json", "data", &fails);
	for (int i = 0; whole[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", corpora_dir(), whole[i]);
		if ((buf = slurp(path, &len)) == NULL)
			corpora_missing(path);
		fails += check_payload(whole[i], buf, len);
		total++;
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/owasp-xss/lt-character-escapes.txt",
	    corpora_dir());
	if ((buf = slurp(path, &len)) == NULL)
		corpora_missing(path);
	for (line = strtok_r(buf, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		n = snprintf(payload, sizeof(payload),
		    "%simg src=x onerror=alert(1)>%sscript>alert(2)"
		    "%s/script>", line, line, line);
		fails += check_payload("lt-escapes", payload, (size_t)n);
		total++;
	}
	free(buf);
	print_message("corpora: %d payloads, %d failures\n", total, fails);
	assert_true(total > 400);
	assert_int_equal(fails, 0);
}

/* --- web_text ---------------------------------------------------------------- */

static void
test_escape(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "plain", "plain" },
		{ "<a href=\"x\">'&'</a>",
		    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "bad \xff\xfe utf8", "bad \xef\xbf\xbd\xef\xbf\xbd utf8" },
		{ "overlong \xc0\xbc", "overlong \xef\xbf\xbd\xef\xbf\xbd" },
		{ "surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd"
		    "\xef\xbf\xbd" },
		{ "ctl\x01\x1b[31m\x7f", "ctl[31m" },
		{ "tab\tnl\n", "tab\tnl\n" },
	};
	struct web_buf b = { 0 };
	char	*out;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		out = web_html_escape(c[i].in);
		assert_string_equal(out, c[i].want);
		free(out);
	}
	web_html_escape_buf(&b, "a\0b", 3);
	out = web_buf_finish(&b);
	assert_string_equal(out, "a\xef\xbf\xbd" "b");
	free(out);
}

static void
test_plain_to_html(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "hi <there>", "<pre class=\"text-plain\">hi &lt;there&gt;</pre>" },
		{ "see https://x.example/a?b=1&c=2.",
		    "<pre class=\"text-plain\">see <a href=\"https://x.example/a?"
		    "b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\">"
		    "https://x.example/a?b=1&amp;c=2</a>.</pre>" },
		{ "(http://x.example/wiki/A_(b))",
		    "<pre class=\"text-plain\">(<a href=\"http://x.example/wiki/"
		    "A_(b)\" rel=\"noopener noreferrer\" target=\"_blank\">"
		    "http://x.example/wiki/A_(b)</a>)</pre>" },
		{ "javascript:alert(1) xhttp://no",
		    "<pre class=\"text-plain\">javascript:alert(1) xhttp://no"
		    "</pre>" },
		{ "http://x\"onmouseover=\"alert(1)",
		    "<pre class=\"text-plain\"><a href=\"http://x\" rel=\"noopener"
		    " noreferrer\" target=\"_blank\">http://x</a>&quot;"
		    "onmouseover=&quot;alert(1)</pre>" },
		{ "mailto:a@b.example", "<pre class=\"text-plain\"><a href=\""
		    "mailto:a@b.example\" rel=\"noopener noreferrer\" target=\""
		    "_blank\">mailto:a@b.example</a></pre>" },
		{ "\nfirst", "<pre class=\"text-plain\">\n\nfirst</pre>" },
	};
	char	*out;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		out = web_text_plain_to_html(c[i].in, strlen(c[i].in));
		assert_string_equal(out, c[i].want);
		free(out);
	}
}

static void
test_header_decode(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "plain subject", "plain subject" },
		{ "=?UTF-8?B?w6TDtsO8?=", "\xc3\xa4\xc3\xb6\xc3\xbc" },
		{ "=?ISO-8859-1?Q?Caf=E9?= ok", "Caf\xc3\xa9 ok" },
		{ "=?utf-8?q?a?= =?utf-8?q?b?=", "ab" },
		{ "=?UTF-8?Q?x=0D=0AInjected:_1?=", "xInjected: 1" },
	};
	char	*out;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		out = web_text_header_decode(c[i].in);
		assert_string_equal(out, c[i].want);
		free(out);
	}
}

static void
test_content_disposition(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "report.pdf", "attachment; filename=\"report.pdf\"; "
		    "filename*=UTF-8''report.pdf" },
		{ "R\xc3\xa9sum\xc3\xa9 2024.pdf", "attachment; filename=\"R_sum_ "
		    "2024.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%202024.pdf" },
		{ "a\"b\r\nSet-Cookie: x=1;.txt", "attachment; filename=\"a_b"
		    "Set-Cookie: x=1_.txt\"; filename*=UTF-8''a%22bSet-Cookie%3A"
		    "%20x%3D1%3B.txt" },
		{ "", "attachment; filename=\"attachment\"; "
		    "filename*=UTF-8''attachment" },
	};
	char	*out;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		out = web_text_content_disposition(c[i].in);
		assert_string_equal(out, c[i].want);
		assert_null(strpbrk(out, "\r\n"));
		free(out);
	}
}

static void
test_text_table(void **state)
{
	(void)state;
	assert_string_equal(web_text_get("login.submit"), "Sign in");
	assert_non_null(strstr(web_text_get("password.rules"), "%zu"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_blocked_src_kept_on_request),
		cmocka_unit_test(test_css),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_corpora),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_plain_to_html),
		cmocka_unit_test(test_header_decode),
		cmocka_unit_test(test_content_disposition),
		cmocka_unit_test(test_text_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
