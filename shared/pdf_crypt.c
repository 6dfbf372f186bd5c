/*
 * The PDF builder's last step, on qpdf's C API: the PDF cairo drew is
 * loaded from memory, each attachment becomes an embedded file (an
 * /EmbeddedFiles name tree under the catalog's /Names, one /Filespec with
 * /F, /UF, /Desc and an /EF stream carrying /Subtype and /Params /Size),
 * and the whole is written encrypted with AES-256, security handler
 * revision 6, as PDF 2.0: printing allowed (full quality), modifying,
 * annotating, form filling and page assembly not; copying text out
 * allowed, as it is for accessibility.
 *
 * SECURITY: the PDF is ours (cairo's output); file names and types come
 * from the message and only ever become PDF strings and names through
 * qpdf's object constructors, which encode them. Attachment bytes are
 * stored as stream data, never parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <qpdf/qpdf-c.h>

#include "pdf_int.h"
#include "pdfpass.h"
#include "xmalloc.h"

/* Copies qpdf's last error into err; always -1. */
static int
pdf_crypt_error(qpdf_data q, const char *what, char *err, size_t errlen)
{
	qpdf_error e;

	if (qpdf_has_error(q) && (e = qpdf_get_error(q)) != NULL)
		snprintf(err, errlen, "%s: %s", what,
		    qpdf_get_error_full_text(q, e));
	else
		snprintf(err, errlen, "%s failed", what);
	return -1;
}

/* A PDF name for a MIME type: "application/pdf" as /application#2Fpdf. */
static qpdf_oh
pdf_crypt_subtype(qpdf_data q, const char *type)
{
	char name[128];
	size_t o = 0;

	name[o++] = '/';
	for (const char *p = type; *p != '\0' && o + 4 < sizeof(name); p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '+')
			name[o++] = (char)c;
		else {
			snprintf(name + o, sizeof(name) - o, "#%02X", c);
			o += 3;
		}
	}
	name[o] = '\0';
	return qpdf_oh_new_name(q, name);
}

/* Adds one embedded file to names (the name tree's /Names array). */
static void
pdf_crypt_file(qpdf_data q, qpdf_oh names, const struct pdf_file *f,
    int seq)
{
	qpdf_oh stream, params, spec, ef, dict;
	char key[32];

	stream = qpdf_oh_new_stream(q);
	qpdf_oh_replace_stream_data(q, stream, f->data, f->len,
	    qpdf_oh_new_null(q), qpdf_oh_new_null(q));
	dict = qpdf_oh_get_dict(q, stream);
	qpdf_oh_replace_key(q, dict, "/Type", qpdf_oh_new_name(q,
	    "/EmbeddedFile"));
	qpdf_oh_replace_key(q, dict, "/Subtype", pdf_crypt_subtype(q,
	    f->type));
	params = qpdf_oh_new_dictionary(q);
	qpdf_oh_replace_key(q, params, "/Size", qpdf_oh_new_integer(q,
	    (long long)f->len));
	qpdf_oh_replace_key(q, dict, "/Params", params);

	ef = qpdf_oh_new_dictionary(q);
	qpdf_oh_replace_key(q, ef, "/F", stream);
	qpdf_oh_replace_key(q, ef, "/UF", stream);
	spec = qpdf_oh_new_dictionary(q);
	qpdf_oh_replace_key(q, spec, "/Type", qpdf_oh_new_name(q,
	    "/Filespec"));
	qpdf_oh_replace_key(q, spec, "/F", qpdf_oh_new_unicode_string(q,
	    f->name));
	qpdf_oh_replace_key(q, spec, "/UF", qpdf_oh_new_unicode_string(q,
	    f->name));
	qpdf_oh_replace_key(q, spec, "/Desc", qpdf_oh_new_unicode_string(q,
	    f->type));
	qpdf_oh_replace_key(q, spec, "/EF", ef);
	spec = qpdf_make_indirect_object(q, spec);

	/* Keys sort in the order of the message: the tree stays valid. */
	snprintf(key, sizeof(key), "%06d", seq);
	qpdf_oh_append_item(q, names, qpdf_oh_new_string(q, key));
	qpdf_oh_append_item(q, names, spec);
}

int
pdf_crypt_write(const struct buf *pdf, int (*next)(void *, struct pdf_file *),
    void *arg, const char *user_pw, const char *owner_pw, const char *outpath,
    char *err, size_t errlen)
{
	qpdf_data q = qpdf_init();
	qpdf_oh root, names = 0, tree, nd;
	struct pdf_file f;
	char owner[PDFPASS_LEN + 1];
	int seq = 0, r, rc = -1;

	qpdf_silence_errors(q);
	qpdf_set_suppress_warnings(q, QPDF_TRUE);
	if (qpdf_read_memory(q, "rendered", pdf->data, pdf->len, NULL) &
	    QPDF_ERRORS) {
		pdf_crypt_error(q, "reading the rendered PDF", err, errlen);
		goto done;
	}
	root = qpdf_get_root(q);
	while ((r = next(arg, &f)) == 1) {
		if (names == 0) {
			names = qpdf_oh_new_array(q);
			tree = qpdf_oh_new_dictionary(q);
			qpdf_oh_replace_key(q, tree, "/Names", names);
			nd = qpdf_oh_new_dictionary(q);
			qpdf_oh_replace_key(q, nd, "/EmbeddedFiles",
			    qpdf_make_indirect_object(q, tree));
			qpdf_oh_replace_key(q, root, "/Names", nd);
			/* Viewers open the attachments panel. */
			qpdf_oh_replace_key(q, root, "/PageMode",
			    qpdf_oh_new_name(q, "/UseAttachments"));
		}
		pdf_crypt_file(q, names, &f, seq++);
		free(f.data);
		free(f.name);
		free(f.type);
		if (qpdf_has_error(q)) {
			pdf_crypt_error(q, "embedding a file", err, errlen);
			goto done;
		}
	}
	if (r == -1) {
		snprintf(err, errlen, "reading an attachment failed");
		goto done;
	}
	if (owner_pw == NULL) {
		if (pdfpass_generate(owner, sizeof(owner), PDFPASS_LEN) == -1) {
			snprintf(err, errlen, "no randomness for the owner "
			    "password");
			goto done;
		}
		owner_pw = owner;
	}
	if (qpdf_init_write(q, outpath) & QPDF_ERRORS) {
		pdf_crypt_error(q, "opening the output", err, errlen);
		goto done;
	}
	qpdf_set_object_stream_mode(q, qpdf_o_generate);
	/*
	 * cairo's streams are compressed already and attachments mostly are
	 * (PDF, images, office files): neither is decoded or compressed
	 * again, which keeps a large attachment cheap.
	 */
	qpdf_set_decode_level(q, qpdf_dl_none);
	qpdf_set_compress_streams(q, QPDF_FALSE);
	qpdf_set_r6_encryption_parameters2(q, user_pw, owner_pw,
	    QPDF_TRUE,		/* accessibility */
	    QPDF_TRUE,		/* extract text */
	    QPDF_FALSE,		/* assemble */
	    QPDF_FALSE,		/* annotate and fill forms */
	    QPDF_FALSE,		/* fill forms */
	    QPDF_FALSE,		/* modify anything else */
	    qpdf_r3p_full, QPDF_TRUE);
	qpdf_force_pdf_version(q, "2.0");
	if (qpdf_write(q) & QPDF_ERRORS) {
		pdf_crypt_error(q, "writing the encrypted PDF", err, errlen);
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(owner, sizeof(owner));
	qpdf_cleanup(&q);
	return rc;
}
