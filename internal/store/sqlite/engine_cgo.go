//go:build cgo

package sqlite

import (
	"errors"

	sqlite3 "github.com/mattn/go-sqlite3"
)

func init() {
	engines[EngineC] = engine{driver: &sqlite3.SQLiteDriver{}, vfs: registerWALBuffer, setup: keepCHeap, code: func(err error) (int, bool) {
		var se sqlite3.Error
		if errors.As(err, &se) {
			return int(se.ExtendedCode), true
		}
		return 0, false
	}}
	DefaultEngine = EngineC
}
