package store

// ClaimSQLite is the SQLite claim statement, for plan tests.
const ClaimSQLite = claimSQLite
