/*
 * The web worker's cache of opened From and Subject values of sealed
 * messages (web_meta.c), by store file name. Opening them costs an
 * AES-GCM key setup and two decryptions per inbox row, most of the
 * encrypted inbox page's extra time; the values of a message never
 * change, so a page listed again costs a lookup per row. Values longer
 * than WEB_META_LEN are not kept (they are opened each time). Like the
 * message page's render cache it holds plaintext in the web process's
 * memory, which the content keys let that process read anyway.
 */
#ifndef PORTAL_WEB_META_H
#define PORTAL_WEB_META_H

#define WEB_META_SETS	512
#define WEB_META_WAYS	4
#define WEB_META_LEN	160

/* 0 with *from and *subject set (caller frees), or -1 when not kept. */
int	web_meta_get(const char *name, char **from, char **subject);
void	web_meta_put(const char *name, const char *from, const char *subject);

#endif
