/*
 * The gateway's per-recipient decision: how a message leaves the LAN for
 * one recipient, from the sender's and the recipient's properties, the
 * triggers in the message and whether the recipient has a certificate.
 * Nothing here touches the message; gateway.c acts on the decision and
 * `postern-cli policy explain` prints it.
 */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

struct props;
struct header;

enum policy_action {
	POLICY_PASS,		/* internal recipient: untouched */
	POLICY_RELAY,		/* unchanged */
	POLICY_SIGN,
	POLICY_ENCRYPT,		/* S/MIME (sign too when sign-enabled) */
	POLICY_PORTAL_WEBMAIL,
	POLICY_PORTAL_PDF,
	POLICY_REFUSE,
	POLICY_PDF,		/* a password PDF built by the gateway */
	POLICY_PGP,		/* PGP/MIME (sign too when sign-enabled) */
};

struct policy_msg {
	const char		*from;		/* envelope sender; "" for <> */
	const char		*subject;	/* decoded (UTF-8); may be NULL */
	const struct header	*hdr;		/* top-level header; may be NULL */
	/* 1 when rcpt has a usable OpenPGP key, 0, -1 on failure; NULL:
	 * nobody has one. */
	int			(*has_pgp)(void *, const char *rcpt);
	void			*pgp_arg;
};

struct policy_decision {
	enum policy_action	 action;
	int			 sign;
	int			 mandatory;
	/* every property that decided and its level, e.g.
	 * "encrypt-mode=mandatory (domain example.com); no valid certificate
	 * for bob@example.com; webmail-enabled=true (global)" */
	char			 rule[512];
	char			 reason[256];	/* POLICY_REFUSE: for the 5.7.x
						 * reply */
};

/*
 * Decides for rcpt. has_cert returns 1 when rcpt has a usable S/MIME
 * certificate, 0 when not, -1 on failure; NULL means none has one.
 * Returns 0, or -1 when a property or certificate lookup failed (the
 * caller answers 4xx; nothing is ever sent in clear on a failed lookup).
 */
int	policy_decide(struct props *, const struct policy_msg *,
	    const char *rcpt, int (*has_cert)(void *, const char *rcpt),
	    void *cert_arg, struct policy_decision *);

/*
 * The subject without the text subject-trigger matched, when the sender
 * has subject-trigger-enabled and subject-trigger-remove-pattern; the
 * caller frees. NULL when nothing changes (or a lookup failed: the tag
 * then stays, which is harmless).
 */
char	*policy_subject_strip(struct props *, const char *from,
	    const char *subject);

/*
 * The methods of encryption-method-order, in order: "smime", "pgp", "pdf"
 * (the gateway's password PDF), "portal" (Webmail, then PDF OTP). Returns 0 with the parsed order, or -1 when value
 * names an unknown or repeated method or none.
 */
#define POLICY_MAX_METHODS	4
enum policy_method { POLICY_M_SMIME, POLICY_M_PGP, POLICY_M_PDF,
    POLICY_M_PORTAL };
int	policy_method_order(const char *value,
	    enum policy_method out[POLICY_MAX_METHODS], int *n);

/* "pass", "relay", "sign", "encrypt", "portal-webmail", "portal-pdf",
 * "refuse", "pdf", "pgp". */
const char *policy_action_name(enum policy_action);

#endif
