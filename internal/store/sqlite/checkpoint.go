package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Checkpoints (copying the write-ahead log back into the database file) run on a
// connection of their own, in the background, instead of inside the commit that crosses
// SQLite's automatic threshold: the writer, which every delivery waits for, then spends
// its time on transactions only. A passive checkpoint copies what is committed without
// holding up the writer. It cannot catch up while the writer keeps appending, and the log
// restarts from its beginning only once everything in it is copied, so when the log has
// grown past walRestartFrames the checkpointer takes the write lock for one more pass,
// which then finishes what the previous one left; the next write transaction restarts
// the log. That keeps the log file within a few tens of megabytes under sustained load.

const (
	// walRestartFrames is the log size, in pages, from which a checkpoint completes
	// under the write lock (16 MB with 4 KiB pages).
	walRestartFrames = 4096
	// checkpointGap is the least time between two checkpoints. A checkpoint copies each
	// page once however many transactions rewrote it since the last one (the queue's
	// index pages, a delivery's row claimed and then finished), so a longer gap copies
	// less: 200 ms against 20 ms wrote 14 % fewer bytes to disk per delivery under a
	// fan-out, and the log still stays within walRestartFrames at this machine's rates.
	checkpointGap = 200 * time.Millisecond
)

type checkpointer struct {
	db      *sql.DB // one connection, for checkpoints only
	wmu     *sync.Mutex
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

func newCheckpointer(db *sql.DB, wmu *sync.Mutex) *checkpointer {
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, wmu: wmu, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that the log has grown. It never blocks.
func (c *checkpointer) committed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		if frames, err := c.checkpoint(); err == nil && frames >= walRestartFrames {
			c.wmu.Lock()
			_, _ = c.checkpoint()
			c.wmu.Unlock()
		}
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointGap):
		}
	}
}

// checkpoint copies what it can and returns the log's size in pages. Errors are left to
// the next pass: a checkpoint that could not finish loses nothing.
func (c *checkpointer) checkpoint() (frames int, err error) {
	var busy, copied int
	err = c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}

// close stops the checkpointer; closing the last connection checkpoints what is left.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.stopped
	return c.db.Close()
}
