package database

import "time"

// SetCheckpointing changes the checkpointer's interval, the WAL size (in
// pages) at which it starts the WAL again, and the writer's own bound, for
// the databases opened until restore is called.
func SetCheckpointing(every time.Duration, resetPages, limitBytes int64) (restore func()) {
	oldEvery, oldReset, oldLimit := checkpointEvery, walResetPages, walLimitBytes
	checkpointEvery, walResetPages, walLimitBytes = every, resetPages, limitBytes
	return func() { checkpointEvery, walResetPages, walLimitBytes = oldEvery, oldReset, oldLimit }
}
