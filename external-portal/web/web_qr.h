/*
 * QR codes for TOTP enrolment, drawn by us as inline SVG (no external
 * service, no script): a white background and one black path of unit
 * squares inside a 4-module quiet zone.
 */
#ifndef POSTERN_WEB_QR_H
#define POSTERN_WEB_QR_H

/*
 * SVG for text (error correction level M), caller frees; *version (if not
 * NULL) gets the QR version chosen. NULL when text does not fit a QR code.
 * size_px is the rendered width and height.
 */
char	*web_qr_svg(const char *text, int size_px, int *version);

#endif
