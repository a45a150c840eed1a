// Package pgtest gives tests a fresh PostgreSQL database each.
//
// The server is CONSIGN_TEST_POSTGRES (an address of its maintenance database), by
// default postgres://postgres@127.0.0.1:5432/postgres. When no server answers, tests
// skip, unless CI=true: there a missing database fails the test rather than test less.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminDSN is the address of the server's maintenance database, where test databases are
// created.
func AdminDSN() string {
	if dsn := os.Getenv("CONSIGN_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	reachOnce sync.Once
	reachErr  error
)

// DSN creates an empty database (consign_test_<random>) for one test, dropped WITH
// (FORCE) when the test ends, and returns its address.
func DSN(tb testing.TB) string {
	tb.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminDSN())
		if err == nil {
			c.Close(ctx)
		}
		reachErr = err
	})
	if reachErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL unreachable at %s (CI=true): %v", AdminDSN(), reachErr)
		}
		tb.Skipf("PostgreSQL unreachable (set CI=true to fail instead): %v", reachErr)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "consign_test_" + hex.EncodeToString(b)
	exec(tb, "CREATE DATABASE "+name)
	tb.Cleanup(func() { exec(tb, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(AdminDSN())
	if err != nil {
		tb.Fatalf("CONSIGN_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// exec runs one statement in the maintenance database.
func exec(tb testing.TB, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		tb.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
