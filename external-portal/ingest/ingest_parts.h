/*
 * The MIME part offsets of a message being stored (ingest_parts.c).
 */
#ifndef PORTAL_INGEST_PARTS_H
#define PORTAL_INGEST_PARTS_H

#include "store/store.h"

/*
 * Parses the message file at path and fills *parts (caller frees with
 * ingest_parts_free) with the leaf parts a download can be served from,
 * numbered as the web pages number them. 0 with *n set; 1 when nothing
 * is recorded (not multipart, a winmail.dat that the web unpacks and so
 * renumbers, or not parseable): the web then parses the message.
 */
int	ingest_parts_scan(const char *path, struct store_part **parts,
	    int *n);
void	ingest_parts_free(struct store_part *parts, int n);

#endif
