package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// Durable commits without holding the write lock through the fsync.
//
// Every write transaction commits with synchronous=NORMAL: SQLite appends its pages to
// the write-ahead log, commit frame last, and releases the write lock without waiting for
// the disk. A durable transaction (DB.tx) then waits, outside the lock, for an fsync of
// the log that began after its commit returned. So the next transaction writes while the
// disk syncs the previous one, and one fsync serves every commit finished before it began,
// whoever made it (ingest's group commits, the API's writes, inbound requests): group
// commit across writers. With synchronous=FULL the writer held the lock through each
// fsync, and ingest could not prepare its next group while the disk worked.
//
// Why a commit is durable once such an fsync returns: fsync writes every page of the file
// written before the call, so the transaction's frames and all before them are on disk;
// after a crash SQLite's recovery keeps the longest run of valid frames from the start of
// the log (each frame's checksum continues the previous one's) up to its last commit
// frame. A checkpoint syncs the log before copying from it and syncs the database file
// after, and the log restarts from its beginning only after a checkpoint copied all of
// it, so a synced frame is always on disk in one file or the other. SQLite deletes the log
// when its last connection closes, after checkpointing it into the database: the log is
// therefore opened anew for each fsync, and when it is gone the database file is synced.
//
// A transaction that is not durable (DB.lightTx: the dispatcher's bookkeeping) does not
// wait; its frames reach the disk with the next fsync. Commits are visible to readers
// before they are on disk. Nothing acts outside the process on what a reader sees except
// the dispatcher, which sends what it claims: a claim waits for the last durable commit
// before it (logSync.settle), so a delivery is never sent for an event a crash could
// still take back.
//
// An fsync that fails leaves the log's state on disk unknown (Linux may have dropped the
// pages it could not write), so the error sticks: every later durable write fails with it
// until the process restarts and SQLite recovers from what the disk holds.
type logSync struct {
	dbPath string
	fsync  func(dbPath string) error

	mu      sync.Mutex
	done    *sync.Cond // broadcast when an fsync ends
	commits uint64     // commits made so far, each numbered under the write lock
	durable uint64     // number of the last durable commit
	synced  uint64     // every commit up to this number is on disk
	syncing bool       // an fsync is running
	err     error      // the first fsync failure
}

func newLogSync(dbPath string) *logSync {
	l := &logSync{dbPath: dbPath, fsync: syncLog}
	l.done = sync.NewCond(&l.mu)
	return l
}

// commit numbers a commit that has just returned; the caller holds the write lock.
func (l *logSync) commit(durable bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commits++
	if durable {
		l.durable = l.commits
	}
	return l.commits
}

// wait returns once commit n is on disk. The first waiter to find no fsync running
// starts one for every commit made so far; the others wait for it, and those it does not
// cover start the next.
func (l *logSync) wait(n uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.synced < n && l.err == nil {
		if l.syncing {
			l.done.Wait()
			continue
		}
		l.syncing = true
		upTo := l.commits
		l.mu.Unlock()
		err := l.fsync(l.dbPath)
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.err = fmt.Errorf("the write-ahead log could not be synced to disk, so recent writes may not be durable; check the data directory's disk and restart consign: %w", err)
		} else {
			l.synced = max(l.synced, upTo)
		}
		l.done.Broadcast()
	}
	if l.synced >= n {
		return nil
	}
	return l.err
}

// settle returns once the last durable commit made so far is on disk.
func (l *logSync) settle() error {
	l.mu.Lock()
	n := l.durable
	l.mu.Unlock()
	return l.wait(n)
}

// syncLog flushes the database's write-ahead log to disk, or the database file when
// there is no log (its last connection closed, which checkpointed it).
func syncLog(dbPath string) error {
	f, err := os.OpenFile(dbPath+"-wal", os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(dbPath, os.O_RDWR, 0)
	}
	if err != nil {
		return err
	}
	return errors.Join(datasync(f), f.Close())
}
