package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"sync"
	"time"
)

// Checkpoints (copying the write-ahead log back into the database file) run on a
// connection of their own, in the background, instead of inside the commit that crosses
// SQLite's automatic threshold: the writer, which every delivery waits for, then spends
// its time on transactions only. A passive checkpoint copies what is committed without
// holding up the writer. It cannot catch up while the writer keeps appending, and the log
// restarts from its beginning only once everything in it is copied, so when the log has
// grown past walRestartBytes the checkpointer takes the write lock for one more pass,
// which then finishes what the previous one left; the next write transaction restarts
// the log. That keeps the log file within a few tens of megabytes under sustained load.
//
// Between two passes the checkpointer waits checkpointGap, unless the log reaches
// walRestartBytes first: a writer faster than the gap allows for (300 MB/s of large
// payloads into the page cache) would otherwise grow the file by its rate times the gap.
// It reads the log's size after each commit from the wal-index header in the -shm file
// (szPage, a 16-bit page size at byte 14 where 1 means 65,536, and mxFrame, a 32-bit
// count of pages at byte 16, both in the machine's byte order: SQLite's documented WAL
// file format), without a query.

const (
	// walRestartBytes is the log size from which a checkpoint completes under the write
	// lock.
	walRestartBytes = 16 << 20
	// checkpointGap is the time between two checkpoints while the log stays below
	// walRestartBytes. A checkpoint copies each page once however many transactions
	// rewrote it since the last one (the queue's index pages, a delivery's row claimed
	// and then finished), so a longer gap copies less: 200 ms against 20 ms wrote 14 %
	// fewer bytes to disk per delivery under a fan-out. Cutting the gap short at
	// walRestartBytes changed nothing measurable there (1.00–1.05 GB written by 200,000
	// fan-out deliveries, with and without).
	checkpointGap = 200 * time.Millisecond
)

type checkpointer struct {
	db      *sql.DB // one connection, for checkpoints only
	wmu     *sync.Mutex
	shmPath string
	shm     *os.File // opened once the file exists
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// newCheckpointer starts the checkpointer of the database at path.
func newCheckpointer(db *sql.DB, wmu *sync.Mutex, path string) *checkpointer {
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, wmu: wmu, shmPath: path + "-shm", wake: make(chan struct{}, 1), stop: make(chan struct{}),
		stopped: make(chan struct{})}
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
	defer func() {
		if c.shm != nil {
			c.shm.Close()
		}
	}()
	gap := time.NewTimer(checkpointGap)
	gap.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		if frames, err := c.checkpoint(); err == nil && frames*c.pageSize() >= walRestartBytes {
			c.wmu.Lock()
			_, _ = c.checkpoint()
			c.wmu.Unlock()
		}
		// The gap, cut short when the log reaches walRestartBytes. A commit seen during
		// it leaves a wake-up for the next pass.
		gap.Reset(checkpointGap)
		for waiting, woken := true, false; waiting; {
			select {
			case <-c.stop:
				return
			case <-gap.C:
				waiting = false
			case <-c.wake:
				woken = true
				if c.logBytes() >= walRestartBytes {
					gap.Stop()
					waiting = false
				}
			}
			if !waiting && woken {
				c.committed()
			}
		}
	}
}

// logBytes returns the log's size from the wal-index header (0 when it cannot tell: the
// pass then waits for its gap).
func (c *checkpointer) logBytes() int {
	size, frames := c.header()
	return size * frames
}

// pageSize returns the database's page size from the wal-index header (4,096, SQLite's
// default, when it cannot tell).
func (c *checkpointer) pageSize() int {
	if size, _ := c.header(); size > 0 {
		return size
	}
	return 4096
}

// header reads szPage and mxFrame from the wal-index header.
func (c *checkpointer) header() (size, frames int) {
	if c.shm == nil {
		f, err := os.Open(c.shmPath)
		if err != nil {
			return 0, 0
		}
		c.shm = f
	}
	var b [6]byte
	if _, err := c.shm.ReadAt(b[:], 14); err != nil {
		return 0, 0
	}
	size = int(binary.NativeEndian.Uint16(b[:2]))
	if size == 1 {
		size = 65536
	}
	return size, int(binary.NativeEndian.Uint32(b[2:]))
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
