/* Schema of external-portal's boot configuration; see portal_conf.c. */
#ifndef PORTAL_CONF_H
#define PORTAL_CONF_H

#include "config.h"

extern const struct conf_key portal_conf_schema[];

#endif
