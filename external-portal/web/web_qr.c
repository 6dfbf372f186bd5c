/*
 * QR code as inline SVG (see web_qr.h). The encoded text is ours (the
 * otpauth URI), but the email address inside it came from mail, so the
 * SVG carries no text at all: only numbers we computed.
 */
#include <stdlib.h>

#include <qrencode.h>

#include "xmalloc.h"
#include "web/web_text.h"
#include "web/web_qr.h"

#define WEB_QR_QUIET	4

char *
web_qr_svg(const char *text, int size_px, int *version)
{
	struct web_buf	 b = { 0 };
	QRcode		*qr;
	int		 x, y, dim;

	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1))
	    == NULL)
		return NULL;
	dim = qr->width + 2 * WEB_QR_QUIET;
	web_buf_addf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	    "shape-rendering=\"crispEdges\" role=\"img\">"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
	    "<path fill=\"#000\" d=\"", dim, dim, size_px, size_px, dim, dim);
	for (y = 0; y < qr->width; y++)
		for (x = 0; x < qr->width; x++)
			if (qr->data[y * qr->width + x] & 1)
				web_buf_addf(&b, "M%d %dh1v1h-1z",
				    x + WEB_QR_QUIET, y + WEB_QR_QUIET);
	web_buf_adds(&b, "\"/></svg>");
	if (version != NULL)
		*version = qr->version;
	QRcode_free(qr);
	return web_buf_finish(&b);
}
