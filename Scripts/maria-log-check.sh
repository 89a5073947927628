#!/usr/bin/env bash
# Reads a throwaway MariaDB server's statement error log (sql_errlog, Scripts/maria.sh) and
# fails on any ERROR that no test provokes on purpose, as pg-log-check.sh does for PostgreSQL:
# a statement that fails and falls back hides a slow or wrong path. Each allowed error names
# what provokes it.
# Usage: bash Scripts/maria-log-check.sh ERRORS.LOG
set -euo pipefail
log=$1
[ -f "$log" ] || { echo "MariaDB statement error log: none written"; exit 0; }
allowed=(
  # MariaDBTests.testWrongConnectionsGetTheirClass: a database that does not exist (exit 66)
  # and a wrong password (exit 77).
  "ERROR 1049: Unknown database 'dj_no_such_database'"
  "ERROR 1045: Access denied for user 'datajoin'@'[a-z0-9.]+' \\(using password: YES\\)"
  # ReliabilityTests.testAUserThatMayOnlyReadStopsWithThePermissionClass: a user with SELECT
  # only runs ingest and export (exit 77, nothing changed).
  "ERROR 1142: [A-Z, ]+ command denied to user 'dj_reader_[0-9]+'"
  # ReliabilityTests.testATrackTheDatabaseRefusesLeavesNothingTracked: a user without the
  # TRIGGER privilege runs track (exit 77, nothing left tracked).
  "ERROR 1142: TRIGGER command denied to user 'dj_notrig_[0-9]+'"
  # ReliabilityTests.testKilledAtRandomMomentsOnMariaDB...: the CLI is killed with its
  # connection open, so the server reads half a packet, or (killed while the server answers
  # its first statements, e.g. SET SESSION time_zone) cannot write the answer.
  "ERROR 1158: Got an error reading communication packets"
  "ERROR 1160: Got an error writing communication packets"
  # KeyBlockTests.testABlockThatRunsOutIsExtendedWithoutACollision: the application's insert
  # past the last id of a key block fails, never wraps.
  "ERROR 4084: Sequence '[a-z0-9_]+\\.ds_keys_orders_[0-9a-f]+' has run out : INSERT INTO orders \\(note\\) VALUES \\('one too many'\\)"
  # ReliabilityTests.testASessionSetupThatFailsIsReportedNotACrash: a user whose per-hour query
  # limit runs out during the session setup (exit 69, no crash).
  "ERROR 1226: User 'dj_limited' has exceeded the 'max_queries_per_hour' resource"
  # InnoDB's snapshot isolation in DataJoin's sessions: an application's write committed after
  # the step's snapshot refuses the step's write to that row, and the step runs again having
  # seen it (ReliabilityTests.testMariaDBApplicationUpdateCommittedDuringAnImportIsNotOverwritten;
  # any test with application writers during an import or export).
  "ERROR 1020: Record has changed since last read in table"
  # ReliabilityTests.testMariaDBMetadataLocksAndKilledStatementsStopTheRun: the test's LOCK TABLES
  # holds the table past --lock-timeout 1 (exit 75), then the test stops the import's waiting
  # statement with KILL QUERY (exit 1).
  "ERROR 1205: Lock wait timeout exceeded; try restarting transaction : SELECT \"id\", \"a\", \"b\", \"c\" FROM \"item\""
  "ERROR 1317: Query execution was interrupted : SELECT \"id\", \"a\", \"b\", \"c\" FROM \"item\""
  # MariaDBTests.testManyWritersDuringExports: the test's own application writers lock shared
  # keys in different orders; the loser runs its transaction again.
  "ERROR 1213: Deadlock found when trying to get lock; try restarting transaction : INSERT INTO item \\(id, b\\)"
  # ReliabilityTests.testADeadlockInAnImportAppliedChangeByChangeRunsItAgainWhole: a CHECK of the
  # target refuses one incoming insert (the bundle then goes change by change, and the change is
  # held), and the test's application closes a lock cycle with the import, InnoDB's victim,
  # which runs again whole.
  "ERROR 4025: CONSTRAINT \`no_thirteen\` failed for \`dj_a_[0-9]+\`\.\`item\`"
  "ERROR 1213: Deadlock found when trying to get lock; try restarting transaction : UPDATE \"item\" SET \"a\" = \? WHERE \"id\" = \?"
  # ConstraintTests.testAnInsertTakingAUniqueValueHeldHereIsHeldOnEveryBrand: an incoming insert
  # whose unique code a row of the target alone holds is refused (on the fast path or in the
  # bundle's order, then change by change) and held.
  "ERROR 1062: Duplicate entry 'dup' for key 'code' : INSERT INTO \"uh\" "
  # BoundaryTests.testAnImportReadingAheadThatIsRefusedGoesChangeByChange: the target's own
  # unique index refuses one incoming row in the middle of an import that reads ahead.
  "ERROR 1062: Duplicate entry 'd10' for key 'ahead_unique'"
  # ConstraintTests.testAParentKeyChangeKeepsItsChildrenOnEveryTarget: a SQLite origin captures
  # the children's updates before their parent's new key, which MariaDB's foreign key refuses
  # until the key is there; held, and released by the same import.
  # (MariaDB origins too: their parent's triggers capture the cascade's updates first.)
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_bk(sqlite|mariadb)mariadb_[0-9]+\"\\.\"kc\""
  # ConstraintTests.testChildrenInsertedBeforeTheirParentsDeleteArriveLastAndConverge, MariaDB to
  # MariaDB: children's inserts delivered after their parent's delete are refused and held.
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_bo9mariadbmariadb_[0-9]+\"\\.\"o(c|g|nl)\""
  # MariaDBCascadeTests.testCascadesOfAMariaDBOriginReachEveryBrand, into MariaDB: the captured
  # cascade's rows come before their parent's new key, refused until it is there, then released.
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_bcmariadb_[0-9]+\"\\.\"g(c|g)\""
  # ConstraintTests.testAChildAddedWhereItsParentWasDeletedElsewhereFollowsTheDeleteEverywhere: a
  # child's insert arriving after its parent's delete is refused by its foreign key and held,
  # until the child's origin sends its cascade (the delete, or the SET NULL update).
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_(hub|lapa|lapb)[0-9]+_[0-9]+\"\\.\"h(c|n)\""
  # ConstraintTests.testARowAddedUnderARowOfItsOwnTableDeletedElsewhereFollowsTheDeleteEverywhere:
  # the same within one table (a tree), held until the importing node's cascade arrives; and
  # ConstraintTests.testARowMovedUnderARowDeletedElsewhereThenDeletedHoldsNothing: a row added
  # or moved under a row deleted here is refused and held, then superseded by its delete.
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_(thub|tlapa|tlapb)[0-9]+_[0-9]+\"\\.\"t(n|z)\""
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_bmsqlitemariadb_[0-9]+\"\\.\"tn\""
  # ConstraintTests.testAHeldMoveOfAParentDoesNotHoldTheDeleteOfItsChild: the move under a row
  # deleted here, and the insert under a row the other node's cascade deleted, held; and
  # ConstraintTests.testARowDeletedElsewhereAboveADeepChainAddedHereTakesTheChain: the chain's
  # inserts reaching the node that deleted its root, held until its cascade's deletes supersede.
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_(avmariadb[a-z]+|bv[a-z]+mariadb|acmariadb[a-z]+)_[0-9]+\"\\.\"tn\""
  # ConstraintTests.testACascadeInAnImportIsStampedBeforeTheNextChangeOfItsRows, a MariaDB hub:
  # a child whose parent's bundle never arrives is refused on the fast path and held, and the
  # run goes change by change.
  "ERROR 1452: Cannot add or update a child row: a foreign key constraint fails \\(\"dj_hmariadbtrue_[0-9]+\"\\.\"item\""
  # MariaDBCascadeTests.testASelfReferencingChainDeletesAsDeepAsInnoDBCascades: the test's own
  # delete of a chain 15 levels deep, past InnoDB's cascade limit.
  "ERROR 1296: Got error 193 '\"dj_ad15_[0-9]+\"\\.\"sc\", CONSTRAINT .* : DELETE FROM sc WHERE id = 0"
)
pattern=$(IFS='|'; echo "${allowed[*]}")
unexpected=$(grep -a ' ERROR ' "$log" | grep -Ev "$pattern" || true)
if [ -n "$unexpected" ]; then
  echo "unexpected errors in the MariaDB statement error log ($log):" >&2
  echo "$unexpected" | cut -c1-400 | head -30 >&2
  exit 1
fi
echo "MariaDB statement error log: $(grep -ac ' ERROR ' "$log" || true) error line(s), all provoked on purpose by tests"
