#ifndef DATAJOIN_CLIBPQ_SHIM_H
#define DATAJOIN_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <postgres_ext.h>

/// PG_DIAG_SQLSTATE is a char literal macro ('C'); Swift sees it as an untyped int.
static inline int datajoin_pg_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int datajoin_pg_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
#endif
