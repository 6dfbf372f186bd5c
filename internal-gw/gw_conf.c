/*
 * Schema of internal-gw's boot configuration. Policy lives in properties
 * (props.h); this file only holds what is needed before the first message:
 * listeners, limits, paths, TLS files and next hops. Every key is
 * documented in config/internal-gw.conf and docs/internal-gw.md.
 */
#include <limits.h>

#include "gw_conf.h"


const struct conf_key gw_conf_schema[] = {
	{ "node", CONF_STRING, 1, 0, 32, NULL },
	{ "hostname", CONF_STRING, 0, 0, 255, "localhost" },
	{ "database", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "spool_dir", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "keys_dir", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "trust_anchors", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "user", CONF_STRING, 0, 0, 64, NULL },
	{ "keyd_user", CONF_STRING, 0, 0, 64, NULL },
	{ "keyd_workers", CONF_INT, 0, 0, 8, "0" },
	{ "workers", CONF_INT, 0, 1, 64, "16" },

	CONF_KEYS_LOG,

	{ "smtp", CONF_GROUP, 1, 0, 0, NULL },
	{ "smtp.listen", CONF_STRLIST, 0, 0, 0, NULL },
	{ "smtp.lmtp_listen", CONF_STRLIST, 0, 0, 0, NULL },
	CONF_KEYS_SMTP_LIMITS("200", CONF_GW_MAX_MESSAGE),
	{ "smtp.xforward_from", CONF_STRLIST, 0, 0, 0, NULL },

	{ "relay", CONF_GROUP, 1, 0, 0, NULL },
	{ "relay.transport_map", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "relay.default_tls", CONF_STRING, 0, 0, 16, "may" },
	{ "relay.ca_file", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "relay.client_cert", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "relay.client_key", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "relay.timeout", CONF_INT, 0, 1, 3600, "120" },
	{ "relay.ledger_ttl_hours", CONF_INT, 0, 1, 8760, "120" },
	/* Replaced by ledger_ttl_hours: set, it is an error that says so. */
	{ "relay.ledger_ttl_days", CONF_INT, 0, 0, 365, NULL },
	{ "relay.tls_policy", CONF_GROUPLIST, 0, 0, 0, NULL },
	{ "relay.tls_policy.[].nexthop", CONF_STRING, 1, 0, 300, NULL },
	{ "relay.tls_policy.[].level", CONF_STRING, 1, 0, 16, NULL },
	{ "relay.tls_policy.[].ca_file", CONF_STRING, 0, 0, PATH_MAX, NULL },

	/* Replaced by the property webmail-sender: set, it is an error that
	 * says so. */
	{ "portal", CONF_GROUP, 0, 0, 0, NULL },
	{ "portal.tunnel_signer", CONF_STRING, 0, 0, 512, NULL },

	{ NULL, 0, 0, 0, 0, NULL },
};
