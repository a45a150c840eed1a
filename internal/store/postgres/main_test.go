package postgres_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs more tests at once than there are CPUs (the default of -parallel) unless
// -parallel is given: each test waits mostly on the server creating its database.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
