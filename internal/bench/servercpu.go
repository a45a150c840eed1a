package bench

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server CPU. With an in-process server the bench can only read its own process's CPU
// time, which holds the server, the receiver and the clients together: Go gives no CPU
// clock per goroutine, and the three share every thread, so the bench does not try to
// split it. With --url the server is a process of its own: the bench reads its CPU time
// (user + system, every thread, from /proc/<pid>/stat) before and after each figure, so
// the figure carries the server's CPU per unit alone — the number that load on the
// machine disturbs least, since it counts the work and not the waiting. On Linux the
// process's CPU clock (clock_gettime, nanoseconds) is read, else /proc's ticks of 10 ms,
// fine for runs of seconds. The process is
// --server-pid, or else the one that holds the socket listening on the URL's port
// (/proc/net/tcp{,6} give the socket's inode, /proc/<pid>/fd the process holding it;
// reading another user's fds needs root or the same user). The nats scenario finds the
// NATS server's process the same way, by the port of --nats-url, in either mode.

// serverProc is the server's process (or, in the nats scenario, the NATS server's),
// when the bench can read its CPU time.
type serverProc struct {
	pid int
	// found says how the pid was had: "given" (--server-pid) or "found by its port".
	found string
	// name is the process's command name (/proc/<pid>/comm), such as nats-server.
	name string
}

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpu is the process's CPU time so far (user + system, all threads, those ended
// included).
func (s *serverProc) cpu() (time.Duration, bool) {
	if s == nil {
		return 0, false
	}
	if d, ok := processClock(s.pid); ok {
		return d, true
	}
	d, err := procCPU(fmt.Sprintf("/proc/%d/stat", s.pid))
	return d, err == nil
}

// procCPU reads utime + stime from a /proc/<pid>/stat file.
func procCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU parses utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// findServer returns the server process of the server at rawURL: pid when given, else
// the process listening on its port. The error says why the server's CPU is not read.
func findServer(rawURL string, pid int) (*serverProc, error) {
	if pid > 0 {
		if _, err := procCPU(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
			return nil, fmt.Errorf("--server-pid %d: %w", pid, err)
		}
		return &serverProc{pid: pid, found: "given", name: procName(pid)}, nil
	}
	p, err := findListener(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w (give --server-pid)", err)
	}
	return p, nil
}

// findListener returns the process listening on the port of rawURL (http, https or
// nats; the scheme's port when the URL names none).
func findListener(rawURL string) (*serverProc, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "nats": "4222"}[u.Scheme]
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	var inodes []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		inodes = append(inodes, listeningInodes(f, uint16(p))...)
	}
	if len(inodes) == 0 {
		return nil, fmt.Errorf("no socket listening on port %d in /proc/net/tcp", p)
	}
	found, err := socketOwner(inodes)
	if err != nil {
		return nil, err
	}
	return &serverProc{pid: found, found: "found by its port", name: procName(found)}, nil
}

// procName returns the command name of process pid, or "process <pid>".
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if name := strings.TrimSpace(string(b)); err == nil && name != "" {
		return name
	}
	return fmt.Sprintf("process %d", pid)
}

// listeningInodes returns the inodes of the sockets listening on port in a
// /proc/net/tcp-format file.
func listeningInodes(path string, port uint16) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		if ino, ok := listeningOn(sc.Text(), port); ok {
			out = append(out, ino)
		}
	}
	return out
}

// listeningOn parses one line of /proc/net/tcp: "sl local rem st … uid timeout inode",
// local as HEXADDR:HEXPORT, st 0A for LISTEN.
func listeningOn(line string, port uint16) (inode string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 10 || f[3] != "0A" {
		return "", false
	}
	_, hexPort, found := strings.Cut(f[1], ":")
	if !found {
		return "", false
	}
	p, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil || uint16(p) != port || f[9] == "0" {
		return "", false
	}
	return f[9], true
}

// socketOwner finds the process (not this one) holding one of the socket inodes.
func socketOwner(inodes []string) (int, error) {
	want := make(map[string]bool, len(inodes))
	for _, ino := range inodes {
		want["socket:["+ino+"]"] = true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && want[link] {
				return pid, nil
			}
		}
	}
	return 0, errors.New("no process of this machine that the bench may read holds the listening socket")
}
