/*
 * Schema of external-portal's boot configuration: listeners, who may
 * connect, TLS files and pins, paths, the notification relay and limits.
 * Policy (triggers, revert, quota, retention) lives in properties.
 * config/external-portal.conf documents every key.
 */
#include <limits.h>

#include "portal_conf.h"

#define MB	CONF_MB
#define DAY	86400LL

const struct conf_key portal_conf_schema[] = {
	{ "node", CONF_STRING, 1, 0, 32, NULL },
	{ "hostname", CONF_STRING, 0, 0, 255, "localhost" },
	{ "database", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "store_dir", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "spool_dir", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "user", CONF_STRING, 0, 0, 64, NULL },
	{ "workers", CONF_INT, 0, 1, 64, "4" },
	{ "signup_token_lifetime", CONF_INT, 0, 600, 365 * DAY, "604800" },
	{ "retention_interval", CONF_INT, 0, 1, 7 * DAY, "3600" },

	CONF_KEYS_LOG,

	{ "smtp", CONF_GROUP, 1, 0, 0, NULL },
	{ "smtp.listeners", CONF_GROUPLIST, 1, 0, 0, NULL },
	{ "smtp.listeners.[].listen", CONF_STRING, 1, 0, 300, NULL },
	{ "smtp.listeners.[].protocol", CONF_STRING, 0, 0, 8, "smtp" },
	{ "smtp.mynetworks", CONF_STRLIST, 1, 0, 0, NULL },
	CONF_KEYS_SMTP_LIMITS("100", CONF_PORTAL_MAX_MESSAGE),
	{ "smtp.tls_client_ca", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "smtp.gateway_cert_sha256", CONF_STRLIST, 0, 0, 0, NULL },
	/* Replaced by tunnel.gateway_cert: set, it is an error that says so. */
	{ "smtp.gateway_tunnel_cert", CONF_STRING, 0, 0, PATH_MAX, NULL },

	/* The add-on tunnel: the portal's key (held by pkeyd) and the
	 * gateway's public certificate. */
	{ "tunnel", CONF_GROUP, 0, 0, 0, NULL },
	{ "tunnel.key", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "tunnel.cert", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "tunnel.gateway_cert", CONF_STRING, 1, 0, PATH_MAX, NULL },

	{ "notify", CONF_GROUP, 1, 0, 0, NULL },
	{ "notify.relay_host", CONF_STRING, 1, 0, 255, NULL },
	{ "notify.relay_port", CONF_INT, 0, 1, 65535, "25" },
	{ "notify.relay_tls", CONF_STRING, 0, 0, 16, "may" },
	{ "notify.ca_file", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "notify.timeout", CONF_INT, 0, 1, 3600, "60" },
	{ "notify.sender", CONF_STRING, 1, 0, 512, NULL },
	{ "notify.sender_name", CONF_STRING, 0, 0, 200, "Secure Mail" },
	{ "notify.base_url", CONF_STRING, 1, 0, 1024, NULL },
	{ "notify.template_dir", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "notify.retry_initial", CONF_INT, 0, 1, DAY, "60" },
	{ "notify.retry_max", CONF_INT, 0, 1, 7 * DAY, "3600" },
	{ "notify.give_up_after", CONF_INT, 0, 10, 60 * DAY, "432000" },
	/* One "new message" mail per account per this many seconds; 0: off. */
	{ "notify.coalesce", CONF_INT, 0, 0, 3600, "5" },

	/*
	 * Replies, new messages and read receipts from Webmail Messenger go
	 * to the organisation's mail server; absent: no reply or compose.
	 */
	{ "reply", CONF_GROUP, 0, 0, 0, NULL },
	{ "reply.relay_host", CONF_STRING, 1, 0, 255, NULL },
	{ "reply.relay_port", CONF_INT, 0, 1, 65535, "25" },
	{ "reply.relay_tls", CONF_STRING, 0, 0, 16, "may" },
	{ "reply.ca_file", CONF_STRING, 0, 0, PATH_MAX, NULL },
	{ "reply.timeout", CONF_INT, 0, 1, 3600, "60" },
	{ "reply.max_attachments", CONF_INT, 0, 0, 64, "10" },
	{ "reply.max_size", CONF_INT, 0, 1024, 1024 * MB, "26214400" },

	/* The HTTPS side (Webmail Messenger); absent: no web worker. */
	{ "web", CONF_GROUP, 0, 0, 0, NULL },
	{ "web.listen", CONF_STRING, 1, 0, 300, NULL },
	{ "web.tls_cert", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "web.tls_key", CONF_STRING, 1, 0, PATH_MAX, NULL },
	{ "web.base_url", CONF_STRING, 0, 0, 1024, NULL },
	{ "web.trusted_proxies", CONF_STRLIST, 0, 0, 0, NULL },
	{ "web.max_header_size", CONF_INT, 0, 1024, 1 * MB, "16384" },
	{ "web.max_body_size", CONF_INT, 0, 4096, 1024 * MB, "33554432" },
	{ "web.max_connections", CONF_INT, 0, 1, 100000, "1000" },
	{ "web.timeout", CONF_INT, 0, 1, 3600, "60" },
	{ "web.argon2_t_cost", CONF_INT, 0, 1, 100, "3" },
	{ "web.argon2_m_cost_kib", CONF_INT, 0, 8, 4 * 1024 * 1024, "65536" },
	{ "web.argon2_parallelism", CONF_INT, 0, 1, 64, "1" },
	{ "web.session_idle_timeout", CONF_INT, 0, 60, 7 * DAY, "1800" },
	{ "web.session_absolute_timeout", CONF_INT, 0, 60, 30 * DAY, "43200" },
	{ "web.throttle_free_attempts", CONF_INT, 0, 1, 1000, "5" },
	{ "web.throttle_delay", CONF_INT, 0, 1, 3600, "2" },
	{ "web.page_size", CONF_INT, 0, 5, 500, "50" },
	{ "web.product_name", CONF_STRING, 0, 0, 100, NULL },
	{ "web.logo_url", CONF_STRING, 0, 0, 1024, NULL },
	{ "web.colour", CONF_STRING, 0, 0, 7, "#1f4e79" },

	/* Encrypted storage: sealed message files, keys held by pkeyd. */
	{ "storage_encryption", CONF_GROUP, 0, 0, 0, NULL },
	{ "storage_encryption.enabled", CONF_BOOL, 0, 0, 0, "false" },
	{ "storage_encryption.certificates", CONF_STRING, 1, 0, PATH_MAX,
	    NULL },
	{ "storage_encryption.private_key", CONF_STRLIST, 1, 0, 0, NULL },
	{ "storage_encryption.unlock", CONF_STRING, 0, 0, 16, "environment" },
	{ "storage_encryption.control_socket", CONF_STRING, 0, 0, 100,
	    "/run/postern/portal-storage.sock" },
	{ "storage_encryption.ask_dir", CONF_STRING, 0, 0, 80,
	    "/run/systemd/ask-password" },

	{ NULL, 0, 0, 0, 0, NULL },
};
