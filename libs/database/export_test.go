package database

import "time"

// SetCheckpointing changes the checkpointer's interval and WAL bound for the
// databases opened until restore is called.
func SetCheckpointing(every time.Duration, limitBytes int64) (restore func()) {
	oldEvery, oldLimit := checkpointEvery, walLimitBytes
	checkpointEvery, walLimitBytes = every, limitBytes
	return func() { checkpointEvery, walLimitBytes = oldEvery, oldLimit }
}
