package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the environment variable that points tests at an existing
// server instead of a throwaway cluster. ForTest creates and drops its own databases
// there, so the role needs CREATEDB.
const EnvDatabaseURL = "GATEHOUSE_TEST_DATABASE_URL"

// shared is the one throwaway cluster of a test binary, started by the first ForTest.
var shared struct {
	mu      sync.Mutex
	cluster *Cluster
	err     error
	n       int // databases created, for unique names
}

// ForTest returns the DSN of a fresh, empty database for tb and drops it when tb ends.
// The database lives on the server named by GATEHOUSE_TEST_DATABASE_URL when it is
// set, else on a throwaway cluster shared by the test binary (fsync off), started on
// first use and stopped by Main, or by the parent-death signal when the package has no
// TestMain. Without PostgreSQL binaries it fails the test: `make test` installs them.
func ForTest(tb testing.TB) string {
	tb.Helper()
	server, err := testServer()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	shared.mu.Lock()
	shared.n++
	name := databaseName(tb.Name(), shared.n)
	shared.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := createDatabase(ctx, server, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, server, name); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(server, name)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvDatabaseURL, err)
	}
	return dsn
}

// testServer returns the DSN of the server ForTest creates databases on.
func testServer() (string, error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u, nil
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.cluster, shared.err = Start(ctx, Options{NoFsync: true, Database: "postgres"})
	}
	if shared.err != nil {
		return "", shared.err
	}
	return shared.cluster.ServerURL("postgres"), nil
}

// Main runs a package's tests and then stops the shared cluster, if one was started:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.cluster != nil {
		shared.cluster.Stop()
		shared.cluster = nil
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// databaseName makes a database name unique to this process and test, within
// PostgreSQL's 63 bytes.
func databaseName(test string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), n, b.String())
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// withDatabase returns dsn (a URL or a key=value string) naming database name instead.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // a later key wins
}

func dropDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}
