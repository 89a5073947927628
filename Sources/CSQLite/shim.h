#ifndef DATAJOIN_CSQLITE_SHIM_H
#define DATAJOIN_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast macro Swift cannot import: it tells SQLite to copy bound bytes.
static inline sqlite3_destructor_type datajoin_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/// sqlite3_db_config is variadic, which Swift cannot call: defensive mode on or off (tests).
static inline int datajoin_sqlite_set_defensive(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0);
}

/// Whether the connection is in defensive mode (1) or not (0).
static inline int datajoin_sqlite_is_defensive(sqlite3 *db) {
    int on = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, -1, &on);
    return on;
}
#endif
