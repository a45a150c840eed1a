package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"

	"modernc.org/sqlite"
)

// Engine names the build of SQLite under the store. Both read and write the same file
// format, run the same migrations and pass the same conformance tests, so a data
// directory can move between binaries built either way.
type Engine string

const (
	// EngineC is SQLite's own C library, linked through cgo (mattn/go-sqlite3): about a
	// quarter less CPU per delivery than the pure-Go build.
	EngineC Engine = "c"
	// EnginePureGo is modernc.org/sqlite, SQLite translated to Go: it needs no C
	// toolchain, so static and cross builds (CGO_ENABLED=0) work.
	EnginePureGo Engine = "purego"
)

// engine is what the store needs from a SQLite driver.
type engine struct {
	driver driver.Driver
	// code returns SQLite's extended result code carried by err, if it carries one.
	code func(err error) (int, bool)
	// vfs, if set, registers the VFS the engine opens files through (walbuf.c) and
	// returns its name.
	vfs func() (string, error)
	// setup, if set, runs before the engine opens a database (it must be safe to run
	// again): keepCHeap for the C engine.
	setup func()
}

// engines holds the engines linked into this binary; engine_cgo.go adds EngineC.
var engines = map[Engine]engine{
	EnginePureGo: {driver: &sqlite.Driver{}, code: func(err error) (int, bool) {
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code(), true
		}
		return 0, false
	}},
}

// DefaultEngine is the engine Open uses: C when the binary was built with cgo (the go
// command's default where a C compiler is installed), pure Go otherwise.
var DefaultEngine = EnginePureGo

// Engines lists the engines linked into this binary.
func Engines() []Engine {
	out := make([]Engine, 0, len(engines))
	for e := range engines {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// connector opens connections of one engine and applies the pool's pragmas to each, in
// the order given (the busy timeout first, then the journal mode and the rest).
type connector struct {
	driver  driver.Driver
	dsn     string
	pragmas []string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite driver %T cannot execute statements on a connection", conn)
	}
	for _, p := range c.pragmas {
		if _, err := ex.ExecContext(ctx, "PRAGMA "+p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("PRAGMA %s: %w", p, err)
		}
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return c.driver }
