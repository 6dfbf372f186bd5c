/*
 * A stored message as the web pages see it: parsed with GMime, its leaf
 * parts numbered from 1 (winmail.dat replaced by the files inside it), and
 * optionally narrowed to a message/rfc822 part inside it ("sub", a dotted
 * path of part numbers). Shared by web_mail.c (reading) and
 * web_compose.c (reply, read receipts).
 */
#ifndef PORTAL_WEB_MAIL_H
#define PORTAL_WEB_MAIL_H

#include <gmime/gmime.h>

#include "store/store.h"
#include "web/web_req.h"

#define WEB_MAIL_MAX_PARTS	512
#define WEB_MAIL_MAX_DEPTH	8	/* message/rfc822 inside each other */
#define WEB_MAIL_SUB_MAX	64

struct web_mail {
	struct store_msg	 meta;
	GMimeMessage		*root;		/* the stored message */
	GMimeMessage		*msg;		/* root, or the one sub names */
	char			 sub[WEB_MAIL_SUB_MAX];	/* "" at the root */
	GMimeObject		*parts[WEB_MAIL_MAX_PARTS];
	int			 nparts;
	int			 html;		/* index of the body, 0: none */
	int			 plain;
	GMimeObject		*owned[WEB_MAIL_MAX_PARTS]; /* from TNEF */
	int			 nowned;
	int			 no_tnef;	/* leave winmail.dat packed */
	int			 tnef_failed;	/* its parser failed */
};

/*
 * Loads message "id" (and "sub") of the signed-in user; answers 404/503
 * itself and returns -1. parse 0: metadata only.
 */
int	 web_mail_load(struct web_req *, struct web_mail *, int parse);
/* Loads message id of the signed-in user without any answer; 0 or -1. */
int	 web_mail_load_id(struct web_req *, int64_t id, struct web_mail *);
void	 web_mail_free(struct web_mail *);
/*
 * Parses the message in st into m (zeroed by the caller, meta unused)
 * and numbers its parts; 0, or 1 when it is not a message. Its bodies
 * stay in st, which must be seekable. For the fuzz target and loading.
 */
int	 web_mail_parse_stream(struct web_mail *, GMimeStream *);
/* Narrows m to an attached message ("3" or "3.1"); 0 or -1. */
int	 web_mail_narrow_sub(struct web_mail *, const char *sub);
/*
 * A reader of the decoded content of a leaf part, UTF-8 for text (caller
 * unrefs), or NULL. Bodies stay in the store file: the parser keeps only
 * their offsets, and this reads them through the decoders in chunks. An
 * attached message is written to a nameless file in tmpdir (NULL: none).
 */
GMimeStream *web_mail_part_open(GMimeObject *, int text, const char *tmpdir);
/* At most max bytes of that content, NUL-terminated (caller frees). */
char	*web_mail_part_bytes(GMimeObject *, size_t *len, int text,
	    size_t max);
/* The decoded size of a part, counted in chunks. */
int64_t	 web_mail_part_size(GMimeObject *);
int	 web_mail_is_attachment(GMimeObject *);

/* Once per process, before the first request. */
void	 web_mail_init(void);

#endif
