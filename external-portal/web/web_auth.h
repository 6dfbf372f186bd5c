/*
 * Helpers of the account pages (web_auth.c) that are not handlers; the
 * handlers themselves are declared with the other routes.
 */
#ifndef PORTAL_WEB_AUTH_H
#define PORTAL_WEB_AUTH_H

#include <stddef.h>

/*
 * The client part of a throttling key for a client address as text: an
 * IPv4 address as is (also when written IPv4-mapped), an IPv6 address as
 * its /64 ("2001:db8:1:2::/64"), since one subscriber holds a whole /64.
 * Anything else is copied (and truncated to outlen).
 */
void	 web_auth_client_key(const char *client, char *out, size_t outlen);
/* Stops the thread that sends new links; before the store is closed. */
void	 web_auth_shutdown(void);

#endif
