package sqlite

import (
	"os"
	"syscall"
)

// datasync writes f's data, and the metadata needed to read it back, to disk: fdatasync,
// which skips the journal commit that fsync makes for a changed modification time when
// the log is rewritten in place.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
