#!/usr/bin/env bash
# Reads a throwaway PostgreSQL server's log and fails on any ERROR or FATAL that no test provokes
# on purpose. A database error is never DataJoin's normal path: a statement that fails and falls
# back hides a slow or wrong path (an UPDATE that failed on every non-text column and went the
# slow way was found like this). Each allowed message names what provokes it.
# Usage: bash Scripts/pg-log-check.sh SERVER.LOG
set -euo pipefail
log=$1
allowed=(
  # Held changes: the database refuses a change (ConstraintTests, TypeMatrixTests,
  # ReliabilityTests' schema drift, SilentLossTests' held insert and its fix).
  'duplicate key value violates unique constraint'
  'violates foreign key constraint'
  'value too long for type'
  'is out of range for type'
  'invalid input syntax for type'
  # ReliabilityTests.testTruncateIsRefusedOnPostgres...: the capture trigger refuses TRUNCATE.
  'TRUNCATE of DataJoin-tracked table'
  # ReliabilityTests.testAColumnAddedAfterTrackIsNamedAndTrackingAgainCapturesIt: the
  # application's update of a table whose tracked column was dropped fails in the capture
  # trigger until 'datajoin track' installs it again (the test asserts it fails).
  'column ds_n.c does not exist'
  # ReliabilityTests.testAnApplicationDeleteCommittedDuringAnImportIsNotUndoneOnPostgres: the
  # application's delete commits while the import waits for that row; the import's step runs
  # again having seen it (the row stays deleted).
  'could not serialize access due to concurrent delete'
  # Crash tests: the CLI is killed in the middle of a transaction or a COPY.
  'unexpected EOF on client connection with an open transaction'
  'terminating connection because protocol synchronization was lost'
  'could not receive data from client'
  # ... or while the server was sending it rows (after "could not send data to client: Broken
  # pipe"; seen once in 313 tests, a kill that landed during a read).
  'connection to client lost'
  # ReliabilityTests.testAConnectionLostMidRunExitsUnavailableWithOneLine: the test ends the
  # import's connection while it waits for the application's row (exit 69, nothing kept).
  'terminating connection due to administrator command'
  # ReliabilityTests.testAUserThatMayOnlyReadStopsWithThePermissionClass: a role with SELECT
  # only runs ingest and export (exit 77, nothing changed).
  'permission denied for table ds_'
  # ReliabilityTests.testAReadOnlySessionStopsWithThePermissionClass: a session set read-only
  # (as a hot standby is) runs export and ingest (exit 77), and a URL's options name a setting
  # the server does not have (exit 1).
  'cannot execute [A-Z]+ in a read-only transaction'
  'FATAL:  unrecognized configuration parameter "no_such_setting"'
  # KeyBlockTests.testABlockThatRunsOutIsExtendedWithoutACollision: the application's insert
  # past the last id of a key block fails, never wraps.
  'nextval: reached maximum value of sequence "orders_id_seq" \(33554431\)'
  # OperatorSafetyTests.testWrongDatabasesGetTheirClass: a database that does not exist (exit 66).
  'database "dj_no_such_database" does not exist'
  # ReliabilityTests.testAnApplicationsOpenTransactionStopsAnImportAtTheLockTimeout: an
  # application's open transaction holds a row past --lock-timeout (exit 75, nothing kept).
  # Also ReliabilityTests.testAPostgresUpgradeWaitsForAnApplicationWriteInsteadOfDeadlocking:
  # an upgrade tries to lock the tracked tables for less than deadlock_timeout at a time while
  # the application's transaction holds one (PostgresDialect.lockForUpgrade).
  'canceling statement due to lock timeout'
  # ReliabilityTests.testAPostgresUpgradeWaitsForAnApplicationWriteInsteadOfDeadlocking: each
  # try of the upgrade's LOCK of the tracked tables is one statement bounded below the deadlock
  # timeout while an application's transaction holds one (PostgresDialect.lockForUpgrade).
  'canceling statement due to statement timeout'
  # ScenarioTestCase drops each passed test's databases (disk): an autovacuum worker the server
  # started for one just dropped finds it gone. It names the database by OID, as no statement
  # of DataJoin's or a test's would.
  'FATAL:  database [0-9]+ does not exist'
  # The server's own background vacuum, cancelled when an export's ANALYZE of the outbox needs
  # its lock (seen in a 5M bench): no statement of DataJoin's failed.
  'canceling autovacuum task'
  # ... or ended when a test drops its throwaway database while the server vacuums it (DROP
  # DATABASE stops that database's autovacuum worker; seen once in 320 tests).
  'terminating autovacuum process due to administrator command'
)
pattern=$(IFS='|'; echo "${allowed[*]}")
unexpected=$(grep -E '(ERROR|FATAL|PANIC):' "$log" | grep -Ev "$pattern" || true)
if [ -n "$unexpected" ]; then
  echo "unexpected errors in the PostgreSQL server log ($log):" >&2
  echo "$unexpected" | head -30 >&2
  exit 1
fi
echo "PostgreSQL server log: $(grep -cE '(ERROR|FATAL):' "$log" || true) error line(s), all provoked on purpose by tests"
