//go:build cgo && !consign_stdlib

// walbuf: a SQLite VFS that gathers the writes of the write-ahead log, and of the
// checkpoints into the database file, into large writes.
//
// SQLite writes each frame of the log with two pwrite calls (its 24-byte header, then
// the page), and a checkpoint copies each page into the database file with one more.
// In batch ingest, pwrite was 17 % of the process's CPU (two thirds of the calls the
// log's, on the committer's path, the rest the checkpoint's): each pays the kernel's
// per-call cost (locking the file, updating its times) for 4 KiB of data. This VFS
// wraps the default one and keeps consecutive writes to a log or a database file in a
// buffer, handed to the real file in one write.
//
// What makes that safe for a log is when its buffer is written out:
//   - before a sync, a read, a size query, a truncation or a close of the log;
//   - before a write that does not continue the buffer (SQLite rewrites frames in
//     place when a transaction writes a page twice, and rewrites their checksums);
//   - right after the page of a commit frame (a frame header with a database size,
//     bytes 4-7, not zero). SQLite publishes a commit in the shared wal-index only
//     after writing its frames, so every reader finds every committed frame in the
//     file, whatever the transaction's synchronous setting; with synchronous=FULL the
//     sync that follows writes out anything left before it returns. A commit frame's
//     header rewritten in place (new checksums) is not buffered at all.
//   - when the connection releases the log's write lock (an unlock of the wal-index's
//     first lock, on the database file), so that frames of a transaction that rolled
//     back never wait in the buffer while another connection, or another process,
//     writes the log; written out while the lock is still held, they lie beyond the
//     log's last commit, as SQLite's own spilled frames do.
// Uncommitted frames may wait in the buffer until then: nothing reads them but the
// writer itself, whose reads write the buffer out first. A crash loses the buffer,
// which is what a crash before those writes would have lost.
//
// A database file's buffer (in WAL mode only checkpoints write it) is written out before
// any read, sync, size query, truncation, close, file control or lock change of that
// file, before a write that does not continue it, and when its connection releases the
// write lock or the checkpoint lock. Other connections read a page from the database
// file only once the log no longer holds it for them, which a checkpoint publishes
// after syncing the database file. A connection set to synchronous=OFF skips that sync
// and would publish before its unlock: its database file's writes are not gathered
// (the VFS sees the PRAGMA as a file control).
//
// A statement that writes several rows inside a transaction, and could fail half-way (a
// constraint), keeps a statement journal: the content, before the statement, of each
// page it changes that existed when it began, so that a failure undoes the statement
// alone. Ingest's multi-row INSERTs are such statements, and with the event IDs of
// concurrent requests interleaved they change many pages that earlier statements
// wrote: in batch ingest about a statement's worth of pages each. SQLite keeps a
// statement journal in memory up to 64 KiB by default and then moves it to a temporary
// file, where every page journaled costs two write system calls (its number, then its
// content): about 0.4 writes and 0.9 KB an event on the single committer's path, for a
// journal thrown away when the statement ends. walbuf_register raises that threshold to
// WALBUF_STMT_JOURNAL (sqlite3_config, before SQLite starts). SQLite holds an in-memory
// journal in blocks of the threshold's size and, should it grow past it, writes each
// block to the file in one call, which SQLite's unix VFS refuses above 128 KiB; writes
// through this VFS that are larger than its buffer go to the real file in pieces. The
// block stays below the size from which the C allocator maps each block on its own
// (keepCHeap: 1 MiB), where every statement that journals would map, fault in and unmap
// it. A statement that changes far more (a bulk step, a migration) still moves its
// journal to a file past the threshold.
//
// Builds tagged consign_stdlib leave this file out: the C engine then opens its files
// through SQLite's default VFS (walbuf_stdlib.go).
//
// A log file learns its connection's database file (for the unlock) from the thread:
// SQLite opens a log inside a call on its connection, after using the database file on
// that thread in the same call. Database files are registered by a serial number; the
// log takes the last one its thread used when its name is that file's name and "-wal".
// A log that finds none is written through unbuffered.
//
// The declarations below are SQLite's VFS interface (sqlite3.h, "OS Interface"), which
// SQLite keeps binary-compatible; the functions come from the SQLite that
// mattn/go-sqlite3 links into the binary.

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef long long walbuf_i64;
typedef struct sqlite3_file sqlite3_file;
typedef struct sqlite3_io_methods sqlite3_io_methods;
typedef struct sqlite3_vfs sqlite3_vfs;

struct sqlite3_file {
	const sqlite3_io_methods *pMethods;
};

struct sqlite3_io_methods {
	int iVersion;
	int (*xClose)(sqlite3_file *);
	int (*xRead)(sqlite3_file *, void *, int, walbuf_i64);
	int (*xWrite)(sqlite3_file *, const void *, int, walbuf_i64);
	int (*xTruncate)(sqlite3_file *, walbuf_i64);
	int (*xSync)(sqlite3_file *, int);
	int (*xFileSize)(sqlite3_file *, walbuf_i64 *);
	int (*xLock)(sqlite3_file *, int);
	int (*xUnlock)(sqlite3_file *, int);
	int (*xCheckReservedLock)(sqlite3_file *, int *);
	int (*xFileControl)(sqlite3_file *, int, void *);
	int (*xSectorSize)(sqlite3_file *);
	int (*xDeviceCharacteristics)(sqlite3_file *);
	int (*xShmMap)(sqlite3_file *, int, int, int, void volatile **);
	int (*xShmLock)(sqlite3_file *, int, int, int);
	void (*xShmBarrier)(sqlite3_file *);
	int (*xShmUnmap)(sqlite3_file *, int);
	int (*xFetch)(sqlite3_file *, walbuf_i64, int, void **);
	int (*xUnfetch)(sqlite3_file *, walbuf_i64, void *);
};

struct sqlite3_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	sqlite3_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(sqlite3_vfs *, const char *, sqlite3_file *, int, int *);
	/* The remaining members are copied from the default VFS, not called here. */
	void *xDelete, *xAccess, *xFullPathname, *xDlOpen, *xDlError, *xDlSym, *xDlClose,
		*xRandomness, *xSleep, *xCurrentTime, *xGetLastError, *xCurrentTimeInt64,
		*xSetSystemCall, *xGetSystemCall, *xNextSystemCall;
};

extern sqlite3_vfs *sqlite3_vfs_find(const char *);
extern int sqlite3_vfs_register(sqlite3_vfs *, int);
extern int sqlite3_config(int, ...);

#define WALBUF_OK 0
#define WALBUF_ERROR 1
#define WALBUF_OPEN_MAIN_DB 0x00000100
#define WALBUF_OPEN_WAL 0x00080000
#define WALBUF_OPEN_SUBJOURNAL 0x00002000
#define WALBUF_SHM_UNLOCK 1
#define WALBUF_FCNTL_PRAGMA 14
#define WALBUF_WRITE_LOCK 0      /* the wal-index lock a writer holds */
#define WALBUF_CHECKPOINT_LOCK 1 /* the wal-index lock a checkpoint holds */
#define WALBUF_FRAME_HEADER 24
/* Under 128 KiB: SQLite's unix VFS writes at most 128 KiB - 1 bytes per call and
   reports a longer write as a full disk. */
#define WALBUF_CAPACITY (120 * 1024)
#define WALBUF_CONFIG_STMTJRNL_SPILL 26
#define WALBUF_STMT_JOURNAL (960 * 1024) /* bytes of statement journal kept in memory */

typedef struct walbuf_file walbuf_file;

struct walbuf_file {
	sqlite3_file base;  /* pMethods: walbuf_methods, or NULL when the open failed */
	sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
	/* A database file: its name, serial number, place in walbuf_dbs, and its log. */
	const char *name;
	unsigned long long serial;
	walbuf_file *next;
	walbuf_file *log;
	int unsynced;       /* its connection is synchronous=OFF: writes not gathered */
	/* A log file: its database file (NULL: not found, writes not gathered). */
	walbuf_file *db;
	int wal;            /* a log whose writes are gathered, by the log's rules */
	/* The buffer, of a log or a database file. */
	char *buf;
	int len;
	walbuf_i64 start;   /* file offset of buf[0] */
	walbuf_i64 commit_page; /* after a commit frame's header: where its page goes; else 0 */
	walbuf_i64 end;         /* end of the furthest write through this handle since the log began */
};

static pthread_mutex_t walbuf_mu = PTHREAD_MUTEX_INITIALIZER;
static walbuf_file *walbuf_dbs;                 /* open database files, under walbuf_mu */
static unsigned long long walbuf_serials;       /* under walbuf_mu */
static __thread unsigned long long walbuf_used; /* the database file this thread used last */
static unsigned long long walbuf_gathered;      /* writes that went into a buffer (atomic) */
static unsigned long long walbuf_subjournals;   /* statement journals opened as files (atomic) */

/* walbuf_gathered_writes reports how many writes went into a buffer so far. */
unsigned long long walbuf_gathered_writes(void) {
	return __atomic_load_n(&walbuf_gathered, __ATOMIC_RELAXED);
}

/* walbuf_subjournal_files reports how many statement journals were opened as files. */
unsigned long long walbuf_subjournal_files(void) {
	return __atomic_load_n(&walbuf_subjournals, __ATOMIC_RELAXED);
}

/* walbuf_use notes that this thread uses p, if it is a database file, and returns p. */
static walbuf_file *walbuf_use(sqlite3_file *p) {
	walbuf_file *f = (walbuf_file *)p;
	if (f->serial != 0) {
		walbuf_used = f->serial;
	}
	return f;
}

static sqlite3_vfs *walbuf_real;
static sqlite3_vfs walbuf_vfs;
static sqlite3_io_methods walbuf_methods;

/* walbuf_write_real writes to the real file, in pieces no larger than the buffer. */
static int walbuf_write_real(walbuf_file *f, const void *data, int n, walbuf_i64 off) {
	while (n > WALBUF_CAPACITY) {
		int rc = f->real->pMethods->xWrite(f->real, data, WALBUF_CAPACITY, off);
		if (rc != WALBUF_OK) {
			return rc;
		}
		data = (const char *)data + WALBUF_CAPACITY;
		n -= WALBUF_CAPACITY;
		off += WALBUF_CAPACITY;
	}
	return f->real->pMethods->xWrite(f->real, data, n, off);
}

/* walbuf_flush hands the buffer to the real file. */
static int walbuf_flush(walbuf_file *f) {
	int rc;
	if (f->len == 0) {
		return WALBUF_OK;
	}
	rc = f->real->pMethods->xWrite(f->real, f->buf, f->len, f->start);
	f->len = 0;
	return rc;
}

static int walbuf_close(sqlite3_file *p) {
	walbuf_file *f = (walbuf_file *)p;
	walbuf_file **pp;
	int rc = walbuf_flush(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	pthread_mutex_lock(&walbuf_mu);
	if (f->db != 0) {
		f->db->log = 0;
	}
	if (f->serial != 0) {
		for (pp = &walbuf_dbs; *pp != 0; pp = &(*pp)->next) {
			if (*pp == f) {
				*pp = f->next;
				break;
			}
		}
		if (f->log != 0) {
			f->log->db = 0;
		}
	}
	pthread_mutex_unlock(&walbuf_mu);
	free(f->buf);
	f->buf = 0;
	return rc != WALBUF_OK ? rc : rc2;
}

static int walbuf_read(sqlite3_file *p, void *out, int n, walbuf_i64 off) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	return f->real->pMethods->xRead(f->real, out, n, off);
}

static int walbuf_write(sqlite3_file *p, const void *data, int n, walbuf_i64 off) {
	walbuf_file *f = walbuf_use(p);
	int rc, commit = 0, page = 0;
	if (!f->wal && (f->serial == 0 || f->unsynced)) {
		return walbuf_write_real(f, data, n, off); /* a journal, an unlinked log */
	}
	if (f->wal) {
		commit = n == WALBUF_FRAME_HEADER && memcmp((const char *)data + 4, "\0\0\0\0", 4) != 0;
		page = f->commit_page != 0 && off == f->commit_page; /* the page of the commit frame */
		f->commit_page = commit ? off + n : 0;
		if (off == 0) {
			f->end = 0; /* the log's header: SQLite starts the log again */
		}
		if (off + n > f->end) {
			f->end = off + n;
		}
	}
	if (f->len > 0 && (off != f->start + f->len || f->len + n > WALBUF_CAPACITY)) {
		rc = walbuf_flush(f);
		if (rc != WALBUF_OK) {
			return rc;
		}
	}
	/* A commit frame's header written before the end is SQLite rewriting the checksums
	   of frames already written, and no page follows: it is written now. So is a write
	   larger than the buffer. */
	if (n > WALBUF_CAPACITY || (commit && off + n < f->end)) {
		return walbuf_write_real(f, data, n, off);
	}
	if (f->buf == 0) {
		f->buf = malloc(WALBUF_CAPACITY);
		if (f->buf == 0) {
			return f->real->pMethods->xWrite(f->real, data, n, off);
		}
	}
	if (f->len == 0) {
		f->start = off;
	}
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	__atomic_add_fetch(&walbuf_gathered, 1, __ATOMIC_RELAXED);
	if (page) {
		return walbuf_flush(f);
	}
	return WALBUF_OK;
}

static int walbuf_truncate(sqlite3_file *p, walbuf_i64 size) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	if (f->end > size) {
		f->end = size;
	}
	return f->real->pMethods->xTruncate(f->real, size);
}

static int walbuf_sync(sqlite3_file *p, int flags) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	return f->real->pMethods->xSync(f->real, flags);
}

static int walbuf_file_size(sqlite3_file *p, walbuf_i64 *size) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	return f->real->pMethods->xFileSize(f->real, size);
}

/* The rest is the real file's, unchanged. */

static int walbuf_lock(sqlite3_file *p, int lock) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	return f->real->pMethods->xLock(f->real, lock);
}

static int walbuf_unlock(sqlite3_file *p, int lock) {
	walbuf_file *f = walbuf_use(p);
	walbuf_flush(f); /* an unlock cannot fail; a lost write shows as an I/O error later */
	return f->real->pMethods->xUnlock(f->real, lock);
}

static int walbuf_check_reserved_lock(sqlite3_file *p, int *out) {
	sqlite3_file *r = walbuf_use(p)->real;
	return r->pMethods->xCheckReservedLock(r, out);
}

/* walbuf_off reports whether a PRAGMA synchronous value turns syncs off. */
static int walbuf_off(const char *v) {
	return v != 0 && (strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
		strcasecmp(v, "false") == 0);
}

static int walbuf_file_control(sqlite3_file *p, int op, void *arg) {
	walbuf_file *f = walbuf_use(p);
	int rc = walbuf_flush(f);
	if (rc != WALBUF_OK) {
		return rc;
	}
	if (op == WALBUF_FCNTL_PRAGMA && f->serial != 0) {
		char **a = (char **)arg; /* a[1] the pragma's name, a[2] its value or NULL */
		if (a[1] != 0 && strcasecmp(a[1], "synchronous") == 0 && a[2] != 0) {
			f->unsynced = walbuf_off(a[2]);
		}
	}
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walbuf_sector_size(sqlite3_file *p) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	return r->pMethods->xSectorSize(r);
}

static int walbuf_device_characteristics(sqlite3_file *p) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	return r->pMethods->xDeviceCharacteristics(r);
}

static int walbuf_shm_map(sqlite3_file *p, int pg, int size, int extend, void volatile **out) {
	sqlite3_file *r = walbuf_use(p)->real;
	return r->pMethods->xShmMap(r, pg, size, extend, out);
}

static int walbuf_shm_lock(sqlite3_file *p, int offset, int n, int flags) {
	walbuf_file *f = walbuf_use(p);
	if ((flags & WALBUF_SHM_UNLOCK) != 0 && offset <= WALBUF_CHECKPOINT_LOCK) {
		/* The write lock or the checkpoint lock: what was written under it goes out
		   before anyone else may write, or read what a checkpoint copied. */
		if (f->log != 0) {
			walbuf_flush(f->log); /* a failure loses only frames past the last commit */
		}
		walbuf_flush(f);
	}
	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void walbuf_shm_barrier(sqlite3_file *p) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	r->pMethods->xShmBarrier(r);
}

static int walbuf_shm_unmap(sqlite3_file *p, int del) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	return r->pMethods->xShmUnmap(r, del);
}

/* Memory-mapped reads, where the real file has them (version 3 of its methods): with
   none, SQLite reads through xRead. */
static int walbuf_fetch(sqlite3_file *p, walbuf_i64 off, int n, void **out) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	if (r->pMethods->iVersion < 3) {
		*out = 0;
		return WALBUF_OK;
	}
	return r->pMethods->xFetch(r, off, n, out);
}

static int walbuf_unfetch(sqlite3_file *p, walbuf_i64 off, void *ptr) {
	sqlite3_file *r = ((walbuf_file *)p)->real;
	if (r->pMethods->iVersion < 3) {
		return WALBUF_OK;
	}
	return r->pMethods->xUnfetch(r, off, ptr);
}

static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out) {
	walbuf_file *f = (walbuf_file *)p;
	int rc;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)&f[1];
	rc = walbuf_real->xOpen(walbuf_real, name, f->real, flags, out);
	if (f->real->pMethods == 0) {
		return rc; /* nothing to close */
	}
	f->base.pMethods = &walbuf_methods;
	if ((flags & WALBUF_OPEN_SUBJOURNAL) != 0) {
		__atomic_add_fetch(&walbuf_subjournals, 1, __ATOMIC_RELAXED);
	}
	if ((flags & WALBUF_OPEN_MAIN_DB) != 0 && name != 0) {
		pthread_mutex_lock(&walbuf_mu);
		f->name = name; /* SQLite keeps it until the file is closed */
		f->serial = ++walbuf_serials;
		f->next = walbuf_dbs;
		walbuf_dbs = f;
		pthread_mutex_unlock(&walbuf_mu);
		walbuf_used = f->serial;
	}
	if ((flags & WALBUF_OPEN_WAL) != 0 && name != 0) {
		walbuf_file *db;
		pthread_mutex_lock(&walbuf_mu);
		for (db = walbuf_dbs; db != 0 && db->serial != walbuf_used; db = db->next) {
		}
		if (db != 0 && db->log == 0) {
			size_t n = strlen(db->name);
			if (strncmp(name, db->name, n) == 0 && strcmp(name + n, "-wal") == 0) {
				db->log = f;
				f->db = db;
				f->wal = 1;
			}
		}
		pthread_mutex_unlock(&walbuf_mu);
	}
	return rc;
}

/* walbuf_register sets the statement journals' threshold and registers the VFS under
   name (not as the default); it returns 0, or SQLite's error code. It must run before
   SQLite starts (sqlite3_config refuses after: SQLITE_MISUSE). The default VFS's files
   must have the shared-memory methods (version 2 of sqlite3_io_methods) that WAL mode
   needs, as the unix and win32 VFSes' do. */
int walbuf_register(const char *name) {
	int rc = sqlite3_config(WALBUF_CONFIG_STMTJRNL_SPILL, WALBUF_STMT_JOURNAL);
	if (rc != WALBUF_OK) {
		return rc;
	}
	walbuf_real = sqlite3_vfs_find(0);
	if (walbuf_real == 0) {
		return WALBUF_ERROR;
	}
	walbuf_vfs = *walbuf_real;
	walbuf_vfs.pNext = 0;
	walbuf_vfs.zName = name;
	walbuf_vfs.szOsFile = (int)sizeof(walbuf_file) + walbuf_real->szOsFile;
	walbuf_vfs.xOpen = walbuf_open;
	walbuf_methods.iVersion = 3;
	walbuf_methods.xClose = walbuf_close;
	walbuf_methods.xRead = walbuf_read;
	walbuf_methods.xWrite = walbuf_write;
	walbuf_methods.xTruncate = walbuf_truncate;
	walbuf_methods.xSync = walbuf_sync;
	walbuf_methods.xFileSize = walbuf_file_size;
	walbuf_methods.xLock = walbuf_lock;
	walbuf_methods.xUnlock = walbuf_unlock;
	walbuf_methods.xCheckReservedLock = walbuf_check_reserved_lock;
	walbuf_methods.xFileControl = walbuf_file_control;
	walbuf_methods.xSectorSize = walbuf_sector_size;
	walbuf_methods.xDeviceCharacteristics = walbuf_device_characteristics;
	walbuf_methods.xShmMap = walbuf_shm_map;
	walbuf_methods.xShmLock = walbuf_shm_lock;
	walbuf_methods.xShmBarrier = walbuf_shm_barrier;
	walbuf_methods.xShmUnmap = walbuf_shm_unmap;
	walbuf_methods.xFetch = walbuf_fetch;
	walbuf_methods.xUnfetch = walbuf_unfetch;
	return sqlite3_vfs_register(&walbuf_vfs, 0);
}
