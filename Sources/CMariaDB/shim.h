#ifndef DATAJOIN_CMARIADB_SHIM_H
#define DATAJOIN_CMARIADB_SHIM_H
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>

/// Flags and codes that are macros Swift cannot import as they are.
static inline unsigned long datajoin_maria_client_multi_statements(void) { return CLIENT_MULTI_STATEMENTS; }
static inline int datajoin_maria_no_data(void) { return MYSQL_NO_DATA; }
static inline int datajoin_maria_data_truncated(void) { return MYSQL_DATA_TRUNCATED; }
static inline unsigned int datajoin_maria_binary_charset(void) { return 63; }
#endif
