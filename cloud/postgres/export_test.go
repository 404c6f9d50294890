package postgres

// SetAlwaysStage makes every batch go through the staging table, so tests and the
// benchmark can exercise that path with batches that could be copied straight in.
func SetAlwaysStage(db *DB, v bool) { db.alwaysStage = v }

// MigrationCount returns how many migrations this build carries.
func MigrationCount() int {
	ms, err := migrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}
