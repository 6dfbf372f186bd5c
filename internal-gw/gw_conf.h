/* The internal gateway's boot configuration schema (config/internal-gw.conf). */
#ifndef POSTERN_GW_CONF_H
#define POSTERN_GW_CONF_H

#include "config.h"

extern const struct conf_key gw_conf_schema[];

#endif
