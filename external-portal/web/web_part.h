/*
 * Attachments served from the part offsets recorded at delivery
 * (web_part.c), without parsing the message.
 */
#ifndef PORTAL_WEB_PART_H
#define PORTAL_WEB_PART_H

#include <stdint.h>

#include "web/web_req.h"

/* Parts up to this decoded size are answered from memory in one reply. */
#define WEB_PART_INLINE_MAX	(256 * 1024)

/*
 * Answers part idx of message id of the signed-in user from its recorded
 * offsets: 0 when answered (the part, or an error page), 1 when the part
 * was not recorded (the caller parses the message).
 */
int	web_part_send_recorded(struct web_req *, int64_t id, int64_t idx);

#endif
