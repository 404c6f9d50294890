package pgtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// query runs one statement that returns one value.
func query[T any](tb testing.TB, dsn, sql string, args ...any) T {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return v
}

func exec(tb testing.TB, dsn, sql string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// TestStartRestartStop starts a durable cluster, checks its settings, restarts it with
// data kept, and checks that Stop removes the temporary directory.
func TestStartRestartStop(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	c, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"work_mem": "8MB"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v at %s", time.Since(start).Round(time.Millisecond), c.URL())
	defer c.Stop()
	if !strings.HasSuffix(strings.SplitN(c.URL(), "?", 2)[0], "/gatehouse") {
		t.Errorf("URL() = %s; want the gatehouse database", c.URL())
	}
	for _, tc := range []struct{ setting, want string }{
		{"fsync", "on"}, {"synchronous_commit", "on"}, {"listen_addresses", "127.0.0.1"}, {"work_mem", "8MB"},
	} {
		if got := query[string](t, c.URL(), "SELECT current_setting($1)", tc.setting); got != tc.want {
			t.Errorf("%s = %s; want %s", tc.setting, got, tc.want)
		}
	}
	exec(t, c.URL(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query[int32](t, c.URL(), "SELECT x FROM kept"); got != 42 {
		t.Errorf("after restart x = %d; want 42", got)
	}
	dir := c.DataDir()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("after Stop, %s: %v; want it removed", filepath.Dir(dir), err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestDataDirKept checks that a cluster in Options.DataDir survives Stop and is reused.
func TestDataDirKept(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	// t.TempDir's parents are 0700 root; the postgres user must be able to enter them.
	for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	c, err := pgtest.Start(ctx, pgtest.Options{DataDir: dir, NoFsync: true, Database: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	exec(t, c.URL(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	c, err = pgtest.Start(ctx, pgtest.Options{DataDir: dir, NoFsync: true, Database: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if got := query[int32](t, c.URL(), "SELECT x FROM kept"); got != 7 {
		t.Errorf("x = %d; want 7", got)
	}
}

// TestForTest checks that every call gets its own empty database on the shared cluster,
// dropped when the test ends.
func TestForTest(t *testing.T) {
	var names []string
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			dsn := pgtest.ForTest(t)
			name := query[string](t, dsn, "SELECT current_database()")
			if n := query[int64](t, dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); n != 0 {
				t.Errorf("fresh database %s has %d tables", name, n)
			}
			exec(t, dsn, "CREATE TABLE mine (x int)")
			names = append(names, name)
		})
	}
	if names[0] == names[1] {
		t.Fatalf("both subtests got database %s", names[0])
	}
	dsn := pgtest.ForTest(t)
	for _, name := range names {
		if query[bool](t, dsn, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name) {
			t.Errorf("database %s still exists after its test", name)
		}
	}
}
