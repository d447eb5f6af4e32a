package database

import (
	"database/sql"
	"errors"
	"reflect"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDriverName is the database/sql name of the SQLite driver this
// package opens its connections with: modernc.org/sqlite's driver, its
// connections without SQLite's per-connection mutex (dropConnMutex).
const sqliteDriverName = "sqlite-apitosms"

func init() {
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, _ string) error {
		return dropConnMutex(conn)
	})
	sql.Register(sqliteDriverName, drv)
}

// dropConnMutex turns an open connection of modernc.org/sqlite into what
// SQLITE_OPEN_NOMUTEX opens: one whose sqlite3 handle has no mutex. The
// driver opens every connection SQLITE_OPEN_FULLMUTEX (a flag no DSN
// parameter changes), so every call into SQLite (each step, and each column
// read twice: its type, then its value) enters and leaves that recursive
// mutex, emulated in Go by modernc.org/libc.
//
// It is safe because nothing uses one connection from two goroutines at
// once: database/sql hands a connection to one user at a time and
// serialises every driver call on it (driverConn's lock), and the driver
// itself is not safe for concurrent use of one connection anyway (its TLS
// and statement state are used before the mutex is reached; see its doc).
// The one call the driver makes from another goroutine, sqlite3_interrupt
// when a context is done, takes no mutex. SQLite's global mutexes (memory,
// VFS, open files) stay: only the per-connection one goes, which is what
// SQLite does itself for a NOMUTEX open (openDatabase allocates db->mutex
// only for a threadsafe connection, and every user of it accepts none).
func dropConnMutex(conn any) error {
	db, err := sqliteHandle(conn)
	if err != nil {
		return err
	}
	m := db.Fmutex
	if m == 0 {
		return nil
	}
	db.Fmutex = 0
	tls := libc.NewTLS()
	sqlite3.Xsqlite3_mutex_free(tls, m)
	tls.Close()
	return nil
}

// sqliteHandle is the sqlite3 handle of a modernc.org/sqlite connection: its
// unexported field db. An error, not a crash, should a later version of the
// driver name or type it otherwise (the driver's version is pinned in
// go.mod, and TestSQLiteConnectionsHaveNoMutex checks it at each upgrade).
func sqliteHandle(conn any) (*sqlite3.Tsqlite3, error) {
	v := reflect.ValueOf(conn)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, errors.New("sqlite: unexpected connection type")
	}
	f := v.Elem().FieldByName("db")
	if f.Kind() != reflect.Uintptr || f.Uint() == 0 {
		return nil, errors.New("sqlite: connection has no db handle")
	}
	// The handle is C memory (modernc.org/libc's allocator, not Go's heap),
	// so it never moves; read through a pointer-sized word for go vet.
	handle := uintptr(f.Uint())
	return (*sqlite3.Tsqlite3)(*(*unsafe.Pointer)(unsafe.Pointer(&handle))), nil //nolint:gosec // G103: the handle is C memory, see above
}
