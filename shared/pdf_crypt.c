/*
 * The PDF builder's last step, on qpdf's C API: the PDF cairo drew is
 * loaded from an intermediate file that already holds the attachments'
 * bytes (see pdf_crypt_update), each attachment becomes an embedded file (an
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Where cairo's PDF ends: the offset of its cross-reference section, its
 * /Size and its /Root reference ("12 0 R"). cairo writes a classic xref
 * table and trailer; this reads our own bytes, never a peer's.
 */
static int
pdf_crypt_trailer(const struct buf *pdf, long long *xref, long long *size,
    char *root, size_t rootlen)
{
	const char *d = pdf->data, *t = NULL, *x = NULL, *p;
	size_t n = pdf->len;
	long long obj, gen;

	for (size_t i = n > 4096 ? n - 4096 : 0; i + 9 <= n; i++) {
		if (memcmp(d + i, "trailer", 7) == 0)
			t = d + i;
		if (memcmp(d + i, "startxref", 9) == 0)
			x = d + i;
	}
	if (t == NULL || x == NULL || x < t ||
	    sscanf(x + 9, " %lld", xref) != 1 ||
	    (p = memmem(t, x - t, "/Size", 5)) == NULL ||
	    sscanf(p + 5, " %lld", size) != 1 ||
	    (p = memmem(t, x - t, "/Root", 5)) == NULL ||
	    sscanf(p + 5, " %lld %lld R", &obj, &gen) != 2 ||
	    *xref <= 0 || *size <= 0 || *size > 1000000)
		return -1;
	snprintf(root, rootlen, "%lld %lld R", obj, gen);
	return 0;
}

/*
 * Writes the files after cairo's PDF in out, as an incremental update:
 * per file a stream object (its bytes as next() wrote them) and its
 * /Length object, then the xref section and a trailer pointing back at
 * cairo's. Nothing from the message enters this PDF syntax: names and
 * types are set later through qpdf. The files into *files and *nfiles
 * (also on failure, for the caller to free); 0 or -1.
 */
static int
pdf_crypt_update(FILE *out, const struct buf *pdf,
    int (*next)(void *, struct pdf_file *, FILE *), void *arg,
    struct pdf_file **files, int *nfiles, long long *first, char *err,
    size_t errlen)
{
	long long xref, size, *offs = NULL, start, end, at;
	char root[64];
	struct pdf_file f;
	int n = 0, r;

	if (pdf_crypt_trailer(pdf, &xref, &size, root, sizeof(root)) == -1) {
		snprintf(err, errlen, "the rendered PDF has no trailer");
		return -1;
	}
	*first = size;
	if (fwrite(pdf->data, 1, pdf->len, out) != pdf->len)
		goto io;
	for (;;) {
		offs = xreallocarray(offs, 2 * (n + 1), sizeof(*offs));
		if ((at = ftello(out)) == -1)
			goto io;
		fputc('\n', out);
		offs[2 * n] = ftello(out);
		fprintf(out, "%lld 0 obj\n<< /Length %lld 0 R >>\nstream\n",
		    size + 2 * n, size + 2 * n + 1);
		start = ftello(out);
		memset(&f, 0, sizeof(f));
		if ((r = next(arg, &f, out)) != 1) {
			/* No more files: the object header goes again. */
			if (fflush(out) == EOF || ftruncate(fileno(out), at) ==
			    -1 || fseeko(out, at, SEEK_SET) == -1)
				goto io;
			break;
		}
		end = ftello(out);
		f.len = end - start;
		*files = xreallocarray(*files, n + 1, sizeof(**files));
		(*files)[n] = f;
		*nfiles = n + 1;
		fprintf(out, "\nendstream\nendobj\n");
		offs[2 * n + 1] = ftello(out);
		fprintf(out, "%lld 0 obj\n%lld\nendobj\n", size + 2 * n + 1,
		    end - start);
		n++;
		if (ferror(out) || start == -1 || end == -1)
			goto io;
	}
	if (r == -1) {
		snprintf(err, errlen, "reading an attachment failed");
		free(offs);
		return -1;
	}
	if (n == 0) {
		free(offs);
		return fflush(out) == EOF ? -1 : 0;
	}
	at = ftello(out);
	fprintf(out, "xref\n%lld %d\n", size, 2 * n);
	for (int i = 0; i < 2 * n; i++)
		fprintf(out, "%010lld 00000 n \n", offs[i]);
	fprintf(out, "trailer\n<< /Size %lld /Root %s /Prev %lld >>\n"
	    "startxref\n%lld\n%%%%EOF\n", size + 2 * n, root, xref, at);
	free(offs);
	if (fflush(out) == EOF || ferror(out))
		goto io2;
	return 0;
io:
	free(offs);
io2:
	snprintf(err, errlen, "writing the intermediate PDF: %s",
	    strerror(errno));
	return -1;
}

/* Makes stream an embedded file and adds it to names. */
static void
pdf_crypt_file(qpdf_data q, qpdf_oh names, qpdf_oh stream,
    const struct pdf_file *f, int seq)
{
	qpdf_oh params, spec, ef, dict;
	char key[32];

	dict = qpdf_oh_get_dict(q, stream);
	qpdf_oh_replace_key(q, dict, "/Type", qpdf_oh_new_name(q,
	    "/EmbeddedFile"));
	qpdf_oh_replace_key(q, dict, "/Subtype", pdf_crypt_subtype(q,
	    f->type));
	params = qpdf_oh_new_dictionary(q);
	qpdf_oh_replace_key(q, params, "/Size", qpdf_oh_new_integer(q,
	    f->len));
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
pdf_crypt_write(const struct buf *pdf,
    int (*next)(void *, struct pdf_file *, FILE *), void *arg,
    const char *user_pw, const char *owner_pw, const char *outpath,
    char *err, size_t errlen)
{
	qpdf_data q = qpdf_init();
	qpdf_oh root, names, tree, nd;
	struct pdf_file *files = NULL;
	char owner[PDFPASS_LEN + 1], *tmp;
	long long first = 0;
	FILE *in = NULL;
	int fd, nfiles = 0, r, rc = -1;

	memset(owner, 0, sizeof(owner));
	qpdf_silence_errors(q);
	qpdf_set_suppress_warnings(q, QPDF_TRUE);
	xasprintf(&tmp, "%s.in.XXXXXX", outpath);
	if ((fd = mkstemp(tmp)) == -1 || (in = fdopen(fd, "w+")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(tmp);
		}
		goto done;
	}
	r = pdf_crypt_update(in, pdf, next, arg, &files, &nfiles, &first,
	    err, errlen);
	/* qpdf keeps the file open while it lives; the name can go now. */
	if (r == -1 || qpdf_read(q, tmp, NULL) & QPDF_ERRORS) {
		if (r != -1)
			pdf_crypt_error(q, "reading the intermediate PDF", err,
			    errlen);
		unlink(tmp);
		goto done;
	}
	unlink(tmp);
	root = qpdf_get_root(q);
	if (nfiles > 0) {
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
		for (int i = 0; i < nfiles; i++)
			pdf_crypt_file(q, names, qpdf_get_object_by_id(q,
			    (int)(first + 2 * i), 0), &files[i], i);
		if (qpdf_has_error(q)) {
			pdf_crypt_error(q, "embedding a file", err, errlen);
			goto done;
		}
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
	if (in != NULL)
		fclose(in);
	for (int i = 0; i < nfiles; i++) {
		free(files[i].name);
		free(files[i].type);
	}
	free(files);
	free(tmp);
	return rc;
}
