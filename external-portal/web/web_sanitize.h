/*
 * HTML mail -> safe HTML fragment for the Webmail Messenger pages.
 *
 * The input is any text/html part an Internet sender wrote. It is parsed
 * with gumbo (the HTML5 algorithm browsers use), the tree is walked and
 * re-serialised from an allow-list of elements, attributes, URL schemes
 * and CSS properties; every text node and attribute value goes through
 * web_html_escape_buf(). What is not on a list is dropped (script, style,
 * iframe, object, form controls, meta, link, base, svg, math, event
 * handlers, srcset, formaction, ...) or, for harmless unknown wrappers,
 * replaced by its children.
 *
 * URLs: links keep http, https and mailto only, and always get
 * rel="noopener noreferrer" target="_blank". Images keep cid: (rewritten
 * through opts->cid_url to a same-origin URL), http/https only when
 * opts->show_remote_images is set (otherwise the img stays as an alt-text
 * placeholder without src), and data:image/{png,gif,jpeg,webp} (raster
 * formats cannot run script and load nothing remote; svg data is refused).
 * CSS never loads anything: any value containing url(, image-set, @import,
 * expression, escapes or comments is dropped, remote images or not.
 *
 * The result is meant for a page served in <iframe sandbox> with its own
 * strict CSP; the sanitiser is the first line, the sandbox the second.
 */
#ifndef POSTERN_WEB_SANITIZE_H
#define POSTERN_WEB_SANITIZE_H

#include <stddef.h>

/* Beyond these the caller offers the original part for download instead. */
#define WEB_SANITIZE_MAX_INPUT	(2 * 1024 * 1024)
#define WEB_SANITIZE_MAX_COST	20000000UL

struct web_sanitize_opts {
	int	 show_remote_images;
	/* A blocked remote image keeps its URL in data-postern-src. */
	int	 keep_blocked_src;
	/*
	 * Maps the Content-ID of a cid: URL (as written after "cid:") to a
	 * same-origin URL, malloc'd; NULL drops the src.
	 */
	char	*(*cid_url)(void *arg, const char *cid);
	void	*cid_arg;
	size_t	 max_input;	/* 0: WEB_SANITIZE_MAX_INPUT */
	/* Bound on the summed nesting depth of tags; 0: the default. */
	unsigned long max_cost;
};

/*
 * Returns the sanitised body contents (caller frees), and sets
 * *had_remote_images (if not NULL) when the mail references remote
 * images, shown or not. NULL when the input is larger (errno EFBIG) or
 * more deeply nested (E2BIG) than the limits: parsing it would take too
 * long or too much memory.
 */
char	*web_sanitize_html(const char *html, size_t len,
	    const struct web_sanitize_opts *, int *had_remote_images);

/*
 * Filters an inline style attribute value to allowed declarations,
 * "prop: value; prop: value"; empty string when nothing survives.
 */
char	*web_sanitize_css(const char *style);

#endif
