/*
 * winmail.dat unpacking; see web_tnef.h. libytnef parses the stream (its
 * memory reader checks every length against the buffer); we copy out the
 * file data and names and never trust a size it reports beyond the bytes
 * it actually holds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ytnef.h>

#include "web/web_tnef.h"
#include "xmalloc.h"

static char *
web_tnef_name(Attachment *a)
{
	variableLength *v;

	v = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_STRING8,
	    PR_ATTACH_LONG_FILENAME));
	if (v == MAPI_UNDEFINED || v == NULL || v->size <= 0 ||
	    v->data == NULL) {
		v = &a->Title;
		if (v->size <= 0 || v->data == NULL)
			return NULL;
	}
	/* Strings in TNEF carry their NUL; strndup stops at the first. */
	return xstrndup((const char *)v->data, v->size);
}

int
web_tnef_unpack(const unsigned char *data, size_t len,
    struct web_tnef_file *out, int max)
{
	TNEFStruct t;
	Attachment *a;
	int n = 0;

	if (len < 6 || len > 0x7fffffff)
		return 0;
	TNEFInitialize(&t);
	t.Debug = 0;
	/* ytnef only reads the buffer; its prototype lacks the const. */
	if (TNEFParseMemory((BYTE *)(uintptr_t)data, (long)len, &t) < 0) {
		TNEFFree(&t);
		return 0;
	}
	for (a = t.starting_attach.next; a != NULL && n < max; a = a->next) {
		variableLength *d = &a->FileData;
		size_t off = 0;

		if (d->size <= 0 || d->data == NULL) {
			/* An embedded object: its data follows a 16-byte IID. */
			d = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_OBJECT,
			    PR_ATTACH_DATA_OBJ));
			if (d == MAPI_UNDEFINED || d == NULL || d->size <= 16 ||
			    d->data == NULL)
				continue;
			off = 16;
		}
		out[n].name = web_tnef_name(a);
		out[n].len = d->size - off;
		out[n].data = xmalloc(out[n].len ? out[n].len : 1);
		memcpy(out[n].data, d->data + off, out[n].len);
		n++;
	}
	TNEFFree(&t);
	return n;
}

void
web_tnef_free(struct web_tnef_file *f, int n)
{
	for (int i = 0; i < n; i++) {
		free(f[i].name);
		free(f[i].data);
	}
}
