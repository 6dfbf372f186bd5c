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
	  .doc = "internal recipients pass the gateway untouched" },
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
	{ .name = "pgp-enabled", .type = PROPS_BOOL, .def = "false",
	  .scopes = UDG, .nodes = GW,
	  .doc = "encrypt with PGP/MIME when the recipient has a usable "
	  "OpenPGP key" },
	{ .name = "encryption-method-order", .type = PROPS_STRING,
	  .def = "smime,pgp,pdf,portal", .scopes = UDG, .nodes = GW,
	  .choices = "smime|pgp|pdf|portal", .check = PROPS_CHECK_LIST,
	  .doc = "the order in which the encryption methods smime, pgp, pdf "
	  "(PDF OTP) and portal (Webmail) are tried for the recipient" },
	{ .name = "auto-import-keys", .type = PROPS_BOOL, .def = "true",
	  .scopes = G, .nodes = GW,
	  .doc = "import an OpenPGP key from an Autocrypt header, or the "
	  "key attached to a message it validly signs" },
	{ .name = "portal-tunnel-sign", .type = PROPS_BOOL, .def = "false",
	  .scopes = G, .nodes = GW,
	  .doc = "S/MIME-sign the copy sent to the portal with the tunnel key" },

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
	{ .name = "portal-require-tunnel-signature", .type = PROPS_BOOL,
	  .def = "false", .scopes = G, .nodes = PORTAL,
	  .doc = "refuse gateway mail not signed with the tunnel key" },
	{ .name = "totp-max-attempts", .type = PROPS_INT, .def = "5",
	  .min = 1, .max = 100, .scopes = UDG, .nodes = PORTAL,
	  .doc = "wrong two-step codes before the half-signed session ends "
	  "and the account's two-step sign-in waits" },

	{ .name = NULL },
};
