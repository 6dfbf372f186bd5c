/*
 * Text for the portal's web pages. Everything here handles bytes that come
 * from mail (bodies, header values, attachment names) or from browsers, so
 * nothing trusts its input: every string that reaches a page or a response
 * header passes through web_html_escape_buf() or the Content-Disposition
 * builder below.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <pthread.h>

#include "log.h"
#include "text.h"
#include "xmalloc.h"
#include "web/web_text.h"

void
web_buf_add(struct web_buf *b, const void *p, size_t n)
{
	(void)buf_put(b, p, n);
}

void
web_buf_adds(struct web_buf *b, const char *s)
{
	(void)buf_puts(b, s);
}

void
web_buf_addf(struct web_buf *b, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)buf_putfv(b, fmt, ap);
	va_end(ap);
}

void
web_buf_addll(struct web_buf *b, long long v)
{
	char	 d[24], *p = d + sizeof(d);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;

	do
		*--p = '0' + u % 10;
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	(void)buf_put(b, p, d + sizeof(d) - p);
}

char *
web_buf_finish(struct web_buf *b)
{
	return buf_finish(b);
}

void
web_buf_free(struct web_buf *b)
{
	buf_free(b);
}

size_t
web_utf8_next(const char *s, size_t len, unsigned int *cp)
{
	return text_utf8_next(s, len, cp);
}

int
web_utf8_valid(const char *s, size_t len)
{
	return text_utf8_valid(s, len);
}

void
web_html_escape_buf(struct web_buf *b, const char *s, size_t len)
{
	(void)text_escape(b, s, len, TEXT_ESC_HTML);
}

char *
web_html_escape(const char *s)
{
	struct web_buf	 b = { 0 };

	web_html_escape_buf(&b, s, strlen(s));
	return web_buf_finish(&b);
}

/* Bytes that end a URL in plain text (besides whitespace and controls). */
static int
web_text_url_stop(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
	    c == '`' || c == '{' || c == '}' || c == '|' || c == '\\' ||
	    c == '^';
}

/* Length of the URL starting at s, or 0 when none starts there. */
static size_t
web_text_url_len(const char *s, size_t len)
{
	static const char *schemes[] = { "https://", "http://", "mailto:" };
	size_t	 i, n = 0, sl, open = 0, close = 0;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		sl = strlen(schemes[i]);
		if (len > sl && strncasecmp(s, schemes[i], sl) == 0) {
			n = sl;
			break;
		}
	}
	if (n == 0)
		return 0;
	while (n < len && !web_text_url_stop((unsigned char)s[n]))
		n++;
	/* Punctuation that ends a sentence is not part of the link. */
	while (n > sl && strchr(".,;:!?'*", s[n - 1]) != NULL)
		n--;
	for (i = 0; i < n; i++) {
		if (s[i] == '(')
			open++;
		else if (s[i] == ')')
			close++;
	}
	while (n > sl && s[n - 1] == ')' && close > open) {
		n--;
		close--;
	}
	return n > sl ? n : 0;
}

char *
web_text_plain_to_html(const char *text, size_t len)
{
	struct web_buf	 b;
	size_t		 i = 0, start = 0, n;

	buf_init(&b, WEB_TEXT_PLAIN_MAX);
	web_buf_adds(&b, "<pre class=\"text-plain\">");
	/* The HTML parser eats one newline right after <pre>. */
	if (len > 0 && (text[0] == '\n' || text[0] == '\r'))
		web_buf_adds(&b, "\n");
	while (i < len) {
		/* A link starts with h or m, not inside a word. */
		if ((text[i] | 0x20) != 'h' && (text[i] | 0x20) != 'm') {
			i++;
			continue;
		}
		if ((i == 0 || !(((unsigned char)text[i - 1] >= 'a' &&
		    (unsigned char)text[i - 1] <= 'z') ||
		    ((unsigned char)text[i - 1] >= 'A' &&
		    (unsigned char)text[i - 1] <= 'Z'))) &&
		    (n = web_text_url_len(text + i, len - i)) > 0) {
			web_html_escape_buf(&b, text + start, i - start);
			web_buf_adds(&b, "<a href=\"");
			web_html_escape_buf(&b, text + i, n);
			web_buf_adds(&b, "\" rel=\"noopener noreferrer\" "
			    "target=\"_blank\">");
			web_html_escape_buf(&b, text + i, n);
			web_buf_adds(&b, "</a>");
			i += n;
			start = i;
			continue;
		}
		i++;
	}
	web_html_escape_buf(&b, text + start, len - start);
	web_buf_adds(&b, "</pre>");
	if (buf_full(&b)) {
		buf_free(&b);
		web_buf_adds(&b, "<p class=\"muted\">");
		web_html_escape_buf(&b, web_text_get("html.too_large"),
		    strlen(web_text_get("html.too_large")));
		web_buf_adds(&b, "</p>");
	}
	return web_buf_finish(&b);
}

static pthread_once_t web_text_gmime_once = PTHREAD_ONCE_INIT;

static void
web_text_gmime_once_init(void)
{
	g_mime_init();
}

void
web_text_gmime_init(void)
{
	pthread_once(&web_text_gmime_once, web_text_gmime_once_init);
}

/* Printable ASCII only, and no "=?" that could open an encoded word. */
static int
web_text_plain_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    (*s == '=' && s[1] == '?'))
			return 0;
	return 1;
}

char *
web_text_header_decode(const char *raw)
{
	struct web_buf	 b = { 0 };
	char		*dec;

	/*
	 * Printable ASCII without an encoded word decodes to itself and
	 * passes the filter below unchanged (most subjects and senders).
	 */
	if (web_text_plain_ascii(raw))
		return xstrdup(raw);
	web_text_gmime_init();
	dec = g_mime_utils_header_decode_text(NULL, raw);
	if (dec == NULL)
		return xstrdup("");
	/*
	 * GMime returns UTF-8, but a charset it cannot convert may leave raw
	 * bytes; keep only well-formed text and drop controls (a header value
	 * has no business carrying them).
	 */
	(void)text_escape(&b, dec, strlen(dec), TEXT_ESC_LINE);
	g_free(dec);
	return web_buf_finish(&b);
}

char *
web_text_content_disposition(const char *name)
{
	struct web_buf	 b = { 0 };
	size_t		 len = strlen(name), i, n, fallback_len = 0;
	unsigned int	 cp;

	web_buf_adds(&b, "attachment; filename=\"");
	for (i = 0; i < len; i += n) {
		if ((n = web_utf8_next(name + i, len - i, &cp)) == 0)
			n = 1;
		else if (cp < 0x20 || cp == 0x7f)
			continue;
		if (n > 1 || (unsigned char)name[i] >= 0x80 || cp == '"' ||
		    cp == '\\' || cp == '/' || cp == ';' || cp == '%')
			web_buf_add(&b, "_", 1);
		else
			web_buf_add(&b, &name[i], 1);
		fallback_len++;
	}
	if (fallback_len == 0)
		web_buf_adds(&b, "attachment");
	web_buf_adds(&b, "\"; filename*=UTF-8''");
	for (i = 0; i < len; i += n) {
		/* attr-char per RFC 5987; everything else percent-encoded. */
		if ((n = web_utf8_next(name + i, len - i, &cp)) == 0) {
			web_buf_adds(&b, "%EF%BF%BD");
			n = 1;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f)
			continue;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)name[i + k];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c)
			    != NULL)
				web_buf_add(&b, &c, 1);
			else
				web_buf_addf(&b, "%%%02X", c);
		}
	}
	if (fallback_len == 0)
		web_buf_adds(&b, "attachment");
	return web_buf_finish(&b);
}

/*
 * Every user-visible string of the portal. Keys are stable identifiers used
 * by the page code; add a column per language when translating.
 */
static const struct {
	const char	*key;
	const char	*en;
} web_text_table[] = {
	{ "app.title",			"Secure Mail" },
	{ "attachment.download",	"Download" },
	{ "attachment.none",		"No attachments" },
	{ "common.back",		"Back" },
	{ "common.cancel",		"Cancel" },
	{ "common.save",		"Save" },
	{ "csrf.invalid",		"Your session form has expired. Please reload the page and try again." },
	{ "error.bad_request",		"The request could not be understood." },
	{ "error.forbidden",		"You are not allowed to see this page." },
	{ "error.unavailable",		"The service is briefly unavailable. Please try again in a few minutes." },
	{ "error.internal",		"Something went wrong on our side. Please try again later." },
	{ "error.not_found",		"The page or message does not exist." },
	{ "error.too_large",		"The upload is too large." },
	{ "html.images_blocked",	"Remote images in this message were blocked to protect your privacy." },
	{ "html.show_images",		"Show images" },
	{ "login.email",		"E-mail address" },
	{ "login.failed",		"The e-mail address or password is wrong." },
	{ "login.locked",		"Too many failed attempts. Please wait a few minutes and try again." },
	{ "login.password",		"Password" },
	{ "login.submit",		"Sign in" },
	{ "login.title",		"Sign in to read your secure mail" },
	{ "logout.done",		"You have been signed out." },
	{ "logout.submit",		"Sign out" },
	{ "message.attachments",	"Attachments" },
	{ "message.date",		"Date" },
	{ "message.from",		"From" },
	{ "message.subject",		"Subject" },
	{ "message.to",			"To" },
	{ "messages.empty",		"You have no messages." },
	{ "messages.title",		"Your secure messages" },
	{ "password.common",		"This password is too common; choose one that is hard to guess." },
	{ "password.confirm",		"Repeat the new password" },
	{ "password.email",		"The password must not be your e-mail address." },
	{ "password.invalid",		"The password contains characters that are not allowed." },
	{ "password.mismatch",		"The two passwords are not the same." },
	{ "password.new",		"New password" },
	{ "password.repeated",		"The password uses too few different characters." },
	{ "password.rules",		"Use at least %zu characters. Long passphrases are good. Very common passwords and your e-mail address are not accepted." },
	{ "password.set.title",		"Choose your password" },
	{ "password.too_long",		"The password is too long." },
	{ "password.too_short",		"The password is too short." },
	{ "compose.attach",		"Attachments" },
	{ "compose.bad_rcpt",		"This is not a valid e-mail address:" },
	{ "compose.body",		"Message" },
	{ "compose.cc",			"Cc" },
	{ "compose.no_rcpt",		"Enter at least one recipient." },
	{ "compose.not_allowed",	"You can only write to addresses in these domains:" },
	{ "compose.nobody_allowed",	"Sending from this portal is not set up; please contact the sender by other means." },
	{ "compose.quota",		"Your mailbox is full. Delete some messages, then send again." },
	{ "compose.send",		"Send" },
	{ "compose.subject",		"Subject" },
	{ "compose.title",		"New message" },
	{ "compose.to",			"To (separate several addresses with commas)" },
	{ "compose.too_large",		"The attachments are too large or too many." },
	{ "compose.wrote",		"wrote:" },
	{ "message.back",		"Back to the message" },
	{ "message.open",		"Open" },
	{ "receipt.subject",		"Read:" },
	{ "receipt.text",		"Your message was opened by the recipient in Webmail Messenger." },
	{ "reply.send",			"Send reply" },
	{ "reply.sent",			"Your reply has been sent." },
	{ "reply.title",		"Reply" },
	{ "totp.code",			"Code from your authenticator app" },
	{ "totp.enrol.help",		"Scan this code with an authenticator app, or enter the key by hand, then type the 6-digit code it shows." },
	{ "totp.enrol.title",		"Set up two-step verification" },
	{ "totp.failed",		"The code is wrong or has already been used." },
	{ "totp.recovery.help",		"Keep these recovery codes in a safe place. Each one works once if you lose your authenticator." },
	{ "totp.recovery.title",	"Recovery codes" },
	{ "totp.recovery.use",		"Use a recovery code" },
	{ "totp.secret",		"Key" },
	{ "totp.submit",		"Verify" },
	{ "totp.title",			"Two-step verification" },
	/* Web pages (web_pages.c, web_auth.c, web_mail.c). */
	{ "common.home",			"Start page" },
	{ "error.title",			"Sorry" },
	{ "forgot.link",			"Forgot your password?" },
	{ "forgot.title",		"Reset your password" },
	{ "html.too_large",		"This message is too large or too complex to show; download the original instead." },
	{ "link.expired",		"This link has expired or was already used. Enter your e-mail address and we will send you a new one." },
	{ "link.expired.title",		"This link no longer works" },
	{ "link.new",			"Send me a new link" },
	{ "link.sent",			"If an account exists for this address, a new link is on its way. Check your mailbox." },
	{ "link.sent.title",		"Check your mailbox" },
	{ "logout.title",		"Signed out" },
	{ "message.body",		"Message text" },
	{ "message.cc",			"Cc" },
	{ "message.delete",		"Delete" },
	{ "message.has_attachments",	"Has attachments" },
	{ "message.no_sender",		"(unknown sender)" },
	{ "message.no_subject",		"(no subject)" },
	{ "message.original",		"Download original (.eml)" },
	{ "message.size",		"Size" },
	{ "messages.delete_selected",	"Delete selected" },
	{ "messages.deleted",		"The selected messages were deleted." },
	{ "messages.older",		"Older messages" },
	{ "messages.quota",		"Storage used:" },
	{ "messages.select",		"Select" },
	{ "messages.sent",		"Sent messages" },
	{ "messages.unread",		"Unread:" },
	{ "nav.compose",			"New message" },
	{ "nav.inbox",			"Inbox" },
	{ "nav.label",			"Main" },
	{ "nav.sent",			"Sent" },
	{ "nav.pdf",			"PDF passwords" },
	{ "nav.settings",		"Settings" },
	{ "nav.skip",			"Skip to content" },
	{ "reset.mail.intro",		"Someone (hopefully you) asked to reset the password of your secure mail account. Open this link to choose a new password:" },
	{ "reset.mail.outro",		"If you did not ask for this, ignore this message; your password stays as it is. Your messages are kept either way." },
	{ "reset.mail.subject",		"Reset your secure mail password" },
	{ "settings.current_password",	"Current password" },
	{ "settings.logout_all",		"Sign out everywhere" },
	{ "settings.password",		"Change password" },
	{ "settings.recovery_new",	"New recovery codes" },
	{ "settings.sessions",		"Sessions" },
	{ "settings.title",		"Settings" },
	{ "settings.totp_disable",	"Turn off two-step verification" },
	{ "settings.totp_enable",	"Set up two-step verification" },
	{ "settings.totp_off",		"Two-step verification is off." },
	{ "settings.totp_on",		"Two-step verification is on." },
	{ "settings.wrong_password",	"The current password is wrong." },
	{ "settings.wrong_password_or_code",	"The password or the code is wrong." },
	{ "totp.code.or_recovery",	"Code from your authenticator app, or a recovery code" },
	{ "totp.locked",		"Too many wrong codes. Sign in again in a few minutes." },
	{ "link.used",			"This link was already used: your account is set up. Sign in with your e-mail address and password." },
	{ "link.used.title",		"This link was already used" },
	/* PDF Messenger's pages (web_pdf.c). */
	{ "pdf.all",			"All PDF passwords" },
	{ "pdf.copied",			"Copied" },
	{ "pdf.copy",			"Copy password" },
	{ "pdf.date",			"Date" },
	{ "pdf.failed",			"This message could not be made into a PDF; its sender was told." },
	{ "pdf.from",			"From" },
	{ "pdf.hint",			"Tap or click the password to select all of it, then copy it. The spaces are only for reading." },
	{ "pdf.list.intro",		"Each PDF message you received has its own password. Open one to see it." },
	{ "pdf.list.none",		"No PDF messages yet." },
	{ "pdf.list.title",		"PDF passwords" },
	{ "pdf.open",			"Open the PDF attached to the mail with this password:" },
	{ "pdf.pending",		"The PDF is being prepared. Reload this page in a minute." },
	{ "pdf.reply",			"Reply securely" },
	{ "pdf.state.failed",		"Could not be sent" },
	{ "pdf.state.pending",		"Being prepared" },
	{ "pdf.state.sent",		"PDF sent" },
	{ "pdf.status",			"Status" },
	{ "pdf.title",			"Password for your PDF" },
};

#define WEB_TEXT_N (sizeof(web_text_table) / sizeof(web_text_table[0]))

/* The table's indexes in key order, for a binary search (a page asks
 * for dozens of texts; a linear scan of the table was a tenth of the
 * inbox page's time). */
static size_t		web_text_order[WEB_TEXT_N];
static pthread_once_t	web_text_once = PTHREAD_ONCE_INIT;

static int
web_text_cmp(const void *a, const void *b)
{
	return strcmp(web_text_table[*(const size_t *)a].key,
	    web_text_table[*(const size_t *)b].key);
}

static void
web_text_sort(void)
{
	for (size_t i = 0; i < WEB_TEXT_N; i++)
		web_text_order[i] = i;
	qsort(web_text_order, WEB_TEXT_N, sizeof(web_text_order[0]),
	    web_text_cmp);
	for (size_t i = 1; i < WEB_TEXT_N; i++)
		if (web_text_cmp(&web_text_order[i - 1],
		    &web_text_order[i]) == 0)
			fatalx("web_text: key \"%s\" twice",
			    web_text_table[web_text_order[i]].key);
}

const char *
web_text_get(const char *key)
{
	size_t	 lo = 0, hi = WEB_TEXT_N, mid;
	int	 c;

	pthread_once(&web_text_once, web_text_sort);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(key, web_text_table[web_text_order[mid]].key);
		if (c == 0)
			return web_text_table[web_text_order[mid]].en;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	fatalx("web_text_get: unknown text key \"%s\"", key);
}
