/*
 * The built-in property table of both nodes: name, type, default, the
 * levels where each may be set and the node that reads it. Names follow
 * CipherMail's. docs/properties.md documents every entry (a test compares
 * it with `postern-cli property defaults`).
 */
#include <stddef.h>

#include "props.h"

#define GW	PROPS_NODE_GW
#define PORTAL	PROPS_NODE_PORTAL
#define BOTH	(PROPS_NODE_GW | PROPS_NODE_PORTAL)
#define U	PROPS_IN_USER
#define D	PROPS_IN_DOMAIN
#define G	PROPS_IN_GLOBAL
#define UDG	(U | D | G)

const struct props_def props_defs[] = {
	/* internal-gw: what leaves the LAN, and how */
	{ .name = "locality", .type = PROPS_ENUM, .def = "external",
	  .choices = "internal|external", .scopes = U | D, .nodes = GW,
	  .doc = "internal recipients take the inbound path (S/MIME "
	  "decrypted and verified, no outbound policy)" },
	{ .name = "encrypt-mode", .type = PROPS_ENUM, .def = "allow",
	  .choices = "no-encryption|allow|mandatory", .scopes = UDG,
	  .nodes = GW,
	  .doc = "never encrypt; encrypt when a certificate exists; "
	  "always encrypt or refuse" },
	{ .name = "subject-trigger", .type = PROPS_REGEX,
	  .def = "\\[encrypt\\]", .scopes = UDG, .nodes = GW,
	  .doc = "extended regex (case-insensitive) on the subject that makes "
	  "encryption mandatory (sender's setting)" },
	{ .name = "subject-trigger-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "the sender may ask for encryption with subject-trigger" },
	{ .name = "subject-trigger-remove-pattern", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = GW,
	  .doc = "remove the text that matched subject-trigger from the "
	  "subject" },
	{ .name = "encrypt-header-trigger", .type = PROPS_STRING, .def = "",
	  .scopes = UDG, .nodes = GW, .check = PROPS_CHECK_HEADER,
	  .doc = "\"Name: value\" header from the sender that makes "
	  "encryption mandatory; empty: off" },
	{ .name = "sign-enabled", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "S/MIME-sign the sender's outgoing mail" },
	{ .name = "sign-require-aligned-from", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = GW,
	  .doc = "sign only when the one From: mailbox is the envelope "
	  "sender (MAIL FROM)" },
	{ .name = "webmail-enabled", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "deliver through Webmail Messenger on the portal when no "
	  "certificate is available" },
	{ .name = "webmail-only-if-mandatory", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = GW,
	  .doc = "use Webmail Messenger only when encryption is mandatory" },
	{ .name = "pdf-otp-enabled", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "deliver as a PDF with a one-time password (portal) when no "
	  "certificate is available" },
	{ .name = "pdf-otp-only-if-mandatory", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = GW,
	  .doc = "use PDF OTP only when encryption is mandatory" },
	{ .name = "remote-portal-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = G, .nodes = GW,
	  .doc = "a split-mode portal exists: portal delivery may be chosen" },
	{ .name = "portal-relay-domain", .type = PROPS_STRING,
	  .def = "relay-to-webmail.private", .scopes = G, .nodes = BOTH,
	  .check = PROPS_CHECK_DOMAIN,
	  .doc = "private domain of rewritten portal recipients "
	  "(local=domain@relay-domain)" },
	{ .name = "webmail-tunnel-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = G, .nodes = GW,
	  .doc = "add-on mode: send portal copies through the S/MIME tunnel "
	  "(signed with the webmail sender key, encrypted to the webmail "
	  "recipient certificate)" },
	{ .name = "webmail-sender", .type = PROPS_STRING, .def = "",
	  .scopes = G, .nodes = GW,
	  .doc = "envelope sender of tunnel mail and the address of the "
	  "webmail sender key in keyd (read at start)" },
	{ .name = "pgp-enabled", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "encrypt with PGP/MIME when the recipient has a usable "
	  "OpenPGP key" },
	{ .name = "encryption-method-order", .type = PROPS_STRING,
	  .def = "smime,pgp,pdf,portal", .scopes = UDG, .nodes = GW,
	  .choices = "smime|pgp|pdf|portal", .check = PROPS_CHECK_LIST,
	  .doc = "the order in which the encryption methods are tried for "
	  "the recipient: smime, pgp, pdf (the gateway's password PDF) and "
	  "portal (Webmail, or PDF OTP)" },
	{ .name = "auto-import-keys", .type = PROPS_BOOL, .def = "true",
	  .scopes = G, .nodes = GW,
	  .doc = "import an OpenPGP key from an Autocrypt header, or the "
	  "key attached to a message it validly signs" },
	{ .name = "webmail-recipient", .type = PROPS_STRING, .def = "",
	  .scopes = G, .nodes = BOTH,
	  .doc = "address the portal accepts tunnel mail for; names the "
	  "portal's webmail recipient certificate" },

	/* both nodes: the split-mode trigger headers */
	{ .name = "trigger-webmail-header", .type = PROPS_STRING,
	  .def = "X-Keep-CipherMail-To-Webmail: True", .scopes = G,
	  .nodes = BOTH, .check = PROPS_CHECK_HEADER,
	  .doc = "header that sends a message to Webmail Messenger" },
	{ .name = "trigger-webmail-header-enabled", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = BOTH,
	  .doc = "add (gateway) or act on (portal) trigger-webmail-header" },
	{ .name = "trigger-otp-encryption-header", .type = PROPS_STRING,
	  .def = "X-Keep-CipherMail-To-PDF-OTP: True", .scopes = G,
	  .nodes = BOTH, .check = PROPS_CHECK_HEADER,
	  .doc = "header that sends a message to PDF OTP encryption" },
	{ .name = "trigger-otp-encryption-header-enabled", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = BOTH,
	  .doc = "add (gateway) or act on (portal) "
	  "trigger-otp-encryption-header" },

	/* external-portal */
	{ .name = "revert-rewrite-recipient", .type = PROPS_BOOL,
	  .def = "false", .scopes = D | G, .nodes = PORTAL,
	  .doc = "turn local=domain@relay-domain back into local@domain" },
	{ .name = "webmail-standalone", .type = PROPS_BOOL, .def = "false",
	  .scopes = G, .nodes = PORTAL,
	  .doc = "store mail without a trigger header for Webmail Messenger "
	  "(a portal used without a gateway)" },
	{ .name = "notification-show-subject", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = PORTAL,
	  .doc = "show the message subject in the notification mail" },
	{ .name = "notification-show-sender", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = PORTAL,
	  .doc = "show the sender's display name and address in the "
	  "notification mail" },
	{ .name = "quota", .type = PROPS_INT, .def = "104857600",
	  .min = 0, .max = 1099511627776LL, .scopes = UDG, .nodes = PORTAL,
	  .doc = "mailbox size limit in bytes; 0: no limit" },
	{ .name = "retention-days", .type = PROPS_INT, .def = "90",
	  .min = 0, .max = 36500, .scopes = UDG, .nodes = PORTAL,
	  .doc = "days a message is kept; 0: keep" },
	{ .name = "signup-reminder-interval", .type = PROPS_INT,
	  .def = "24", .min = 0, .max = 8760, .scopes = UDG, .nodes = PORTAL,
	  .doc = "hours between sign-up reminders to a pending account; "
	  "0: one with every message" },
	{ .name = "webmail-reply-enabled", .type = PROPS_BOOL, .def = "true",
	  .scopes = UDG, .nodes = PORTAL,
	  .doc = "the recipient may reply from Webmail Messenger" },
	{ .name = "webmail-compose-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = PORTAL,
	  .doc = "the recipient may write new messages from Webmail "
	  "Messenger" },
	{ .name = "reply-allowed-domains", .type = PROPS_STRING, .def = "",
	  .scopes = UDG, .nodes = PORTAL, .check = PROPS_CHECK_DOMAINS,
	  .doc = "comma-separated domains that Webmail Messenger replies may "
	  "be addressed to" },
	{ .name = "webmail-read-receipt", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = PORTAL,
	  .doc = "tell the sender when the recipient first opens the message" },
	{ .name = "password-min-length", .type = PROPS_INT, .def = "12",
	  .min = 8, .max = 128, .scopes = UDG, .nodes = PORTAL,
	  .doc = "shortest portal password accepted (characters)" },
	{ .name = "require-tunnel", .type = PROPS_BOOL, .def = "false",
	  .scopes = G, .nodes = PORTAL,
	  .doc = "accept only tunnel mail (add-on mode); split-mode mail "
	  "with trigger headers is refused" },
	{ .name = "tunnel-max-age", .type = PROPS_INT, .def = "600",
	  .min = 10, .max = 86400, .scopes = G, .nodes = PORTAL,
	  .doc = "seconds a tunnel message's timestamp may lie in the past "
	  "or future; seen tunnel ids are kept twice as long" },
	{ .name = "totp-max-attempts", .type = PROPS_INT, .def = "5",
	  .min = 1, .max = 100, .scopes = UDG, .nodes = PORTAL,
	  .doc = "wrong two-step codes before the half-signed session ends "
	  "and the account's two-step sign-in waits" },

	/* internal-gw, inbound S/MIME for internal recipients */
	{ .name = "subject-tag-decrypted", .type = PROPS_STRING,
	  .def = "[decrypted]", .scopes = UDG, .nodes = GW,
	  .doc = "subject prefix of a message the gateway decrypted" },
	{ .name = "subject-tag-decrypted-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "add subject-tag-decrypted" },
	{ .name = "subject-tag-signed-valid", .type = PROPS_STRING,
	  .def = "[signed]", .scopes = UDG, .nodes = GW,
	  .doc = "subject prefix of a message with a valid signature" },
	{ .name = "subject-tag-signed-valid-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "add subject-tag-signed-valid" },
	{ .name = "subject-tag-signed-invalid", .type = PROPS_STRING,
	  .def = "[invalid signature]", .scopes = UDG, .nodes = GW,
	  .doc = "subject prefix of a message whose signature is invalid or "
	  "untrusted" },
	{ .name = "subject-tag-signed-invalid-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "add subject-tag-signed-invalid" },
	{ .name = "remove-signature", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "deliver a validly signed message without its signature" },
	{ .name = "auto-import-certificates", .type = PROPS_BOOL,
	  .def = "true", .scopes = UDG, .nodes = GW,
	  .doc = "import the certificate and chain of a valid signature into "
	  "the certificate store" },
	{ .name = "inbound-reject-malformed", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "refuse (5xx) inbound S/MIME that cannot be parsed within "
	  "the limits instead of passing it unchanged" },
	{ .name = "inbound-max-recipient-infos", .type = PROPS_INT,
	  .def = "64", .min = 1, .max = 10000, .scopes = UDG, .nodes = GW,
	  .doc = "most RecipientInfos an inbound encrypted message may have" },
	{ .name = "pdf-otp-show-subject", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = PORTAL,
	  .doc = "show the original subject in the PDF OTP mail" },
	{ .name = "pdf-otp-keep-days", .type = PROPS_INT, .def = "30",
	  .min = 1, .max = 36500, .scopes = G, .nodes = PORTAL,
	  .doc = "days the password of a PDF OTP message stays on the "
	  "portal after its PDF was sent" },
	{ .name = "pdf-encryption-enabled", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "send a password-protected PDF from the gateway when there "
	  "is no certificate (before the portal methods)" },
	{ .name = "pdf-only-if-mandatory", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "use password PDFs only when encryption is mandatory" },
	{ .name = "pdf-password", .type = PROPS_STRING, .def = "",
	  .scopes = UDG, .nodes = GW,
	  .doc = "fixed password of the recipient's PDFs; empty: a random "
	  "one sent to the sender" },
	{ .name = "pdf-password-send-to-originator", .type = PROPS_BOOL,
	  .def = "false", .scopes = UDG, .nodes = GW,
	  .doc = "a random password per message, mailed to the sender" },

	{ .name = NULL },
};
