// Package pgtest runs a throwaway PostgreSQL cluster from the system's binaries: initdb
// into a temporary directory, postgres on a free port of 127.0.0.1, removed at the end.
// Tests get a fresh database from ForTest; gatehouse-cloud started without a DSN gets
// a cluster from Start.
//
// No container and no running system server are needed, only the binaries of Debian's
// postgresql package (make test installs it). When the process runs as root, initdb and
// postgres run as the postgres user, since both refuse to run as root.
package pgtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL binaries (initdb, postgres) found via pg_config --bindir, " +
	"/usr/lib/postgresql/*/bin or $PATH; `make test` installs Debian's postgresql package " +
	"(apt-get install -y postgresql), or set GATEHOUSE_TEST_DATABASE_URL to a server")

// Options configure a cluster.
type Options struct {
	// DataDir keeps the cluster between runs: it is created and initialised when empty,
	// reused otherwise, and kept by Stop. Empty means a temporary directory that Stop
	// removes. Every directory above it must be searchable by the postgres user when
	// running as root.
	DataDir string
	// NoFsync trades durability for speed, for tests: fsync, synchronous_commit and
	// full_page_writes off. The default keeps PostgreSQL's durable defaults.
	NoFsync bool
	// Database is created if missing and named by URL; empty means "gatehouse".
	Database string
	// Port to listen on; zero picks a free one.
	Port int
	// Settings are extra server settings (postgres -c name=value), such as
	// max_wal_size for a benchmark.
	Settings map[string]string
	// Logger receives the cluster's life cycle; nil discards it.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	opts  Options
	bin   string
	root  string // temporary directory removed by Stop; "" with Options.DataDir
	data  string
	port  int
	cred  *syscall.Credential
	log   *slog.Logger
	out   *tail
	mu    sync.Mutex
	proc  *process
	owned bool // Stop removes root
}

// Start finds the PostgreSQL binaries, initialises a cluster (unless opts.DataDir holds
// one), starts postgres on 127.0.0.1, waits until it accepts connections and creates
// opts.Database. Stop ends it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Database == "" {
		opts.Database = "gatehouse"
	}
	c := &Cluster{opts: opts, bin: bin, log: opts.Logger, out: &tail{max: 64 << 10}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs a postgres user to run initdb and postgres as: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if opts.DataDir == "" {
		sweep()
		c.root, err = os.MkdirTemp("", tempPrefix)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		c.owned = true
		if err := os.WriteFile(filepath.Join(c.root, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			c.removeRoot()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		c.data = filepath.Join(c.root, "data")
	} else {
		c.data, err = filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := c.init(ctx); err != nil {
		c.removeRoot()
		return nil, err
	}
	c.port = opts.Port
	for try := 0; ; try++ {
		if opts.Port == 0 {
			if c.port, err = freePort(); err != nil {
				c.removeRoot()
				return nil, err
			}
		}
		err = c.start(ctx)
		if err == nil {
			break
		}
		// Another process may have taken the free port between our probe and postgres's
		// bind: pick another.
		if opts.Port != 0 || try == 4 || !strings.Contains(c.out.String(), "could not bind") {
			c.removeRoot()
			return nil, err
		}
	}
	if err := c.createDatabase(ctx, opts.Database); err != nil {
		c.Stop()
		return nil, err
	}
	c.log.Info("postgres started", "url", c.URL(), "data", c.data, "fsync", !opts.NoFsync)
	return c, nil
}

const (
	tempPrefix = "gatehouse-pgtest-"
	ownerFile  = "owner.pid"
)

// BinDir returns the directory holding initdb and postgres: pg_config --bindir when it
// has them, else the newest /usr/lib/postgresql/*/bin, else the directory of initdb on
// $PATH.
func BinDir() (string, error) {
	ok := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); ok(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, dir := range dirs {
		if ok(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && ok(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

// init prepares the data directory: kept from an earlier run, copied from the
// machine's template for a temporary cluster, or made by initdb.
func (c *Cluster) init(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		return c.chownAll(c.data) // kept from an earlier run
	}
	if c.root != "" {
		if err := c.chown(c.root); err != nil {
			return err
		}
	}
	if c.owned {
		// initdb takes seconds; copying a cluster it made once takes a fraction of one.
		// A throwaway cluster needs no fsync of its first files.
		tmpl, err := c.template(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := copyTree(tmpl, c.data); err != nil {
			return fmt.Errorf("pgtest: copy the template cluster: %w", err)
		}
		err = c.chownAll(c.data)
		c.log.Debug("copied the template cluster", "from", tmpl, "took", time.Since(start))
		return err
	}
	return c.initdb(ctx, c.data, c.opts.NoFsync)
}

// template returns a data directory made by initdb for these binaries, once per
// machine and user, kept in the temporary directory for every later cluster.
func (c *Cluster) template(ctx context.Context) (string, error) {
	st, err := os.Stat(filepath.Join(c.bin, "initdb"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	key := fmt.Sprintf("%s|%d|%d|%d", c.bin, st.Size(), st.ModTime().UnixNano(), os.Geteuid())
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("gatehouse-pgtemplate-%x", sha256.Sum256([]byte(key)))[:len("gatehouse-pgtemplate-")+16])
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	build, err := os.MkdirTemp("", "gatehouse-pgtemplate-build-")
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer os.RemoveAll(build)
	if err := c.chown(build); err != nil {
		return "", err
	}
	if err := c.initdb(ctx, filepath.Join(build, "data"), true); err != nil {
		return "", err
	}
	// Whoever renames first wins; a loser's rename fails on the existing directory.
	if err := os.Rename(filepath.Join(build, "data"), dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "PG_VERSION")); serr != nil {
			return "", fmt.Errorf("pgtest: keep the template cluster: %w", err)
		}
	}
	return dir, nil
}

// initdb runs initdb into data, as the postgres user when we are root.
func (c *Cluster) initdb(ctx context.Context, data string, noSync bool) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := c.chown(data); err != nil {
		return err
	}
	args := []string{"-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"}
	if noSync {
		args = append(args, "--no-sync")
	}
	name := filepath.Join(c.bin, "initdb")
	if c.cred != nil {
		// initdb refuses to run as root; runuser gives it the postgres user's identity.
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = os.TempDir() // the postgres user may not be able to enter our working directory
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: initdb %s: %w\n%s", data, err, out.Bytes())
	}
	c.log.Debug("initdb", "data", data, "took", time.Since(start))
	return nil
}

// copyTree copies the directory src to dst, which must not exist, keeping modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file", path)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

func (c *Cluster) chownAll(dir string) error {
	if c.cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return c.chown(path)
	})
}

// start starts postgres on c.port and waits until it accepts connections.
func (c *Cluster) start(ctx context.Context) error {
	fsync := "on"
	if c.opts.NoFsync {
		fsync = "off"
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(c.port),
		"fsync":                   fsync,
		"synchronous_commit":      fsync,
		"full_page_writes":        fsync,
		"unix_socket_directories": "",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
	}
	// A unix socket path is limited to 107 bytes; without one only TCP is offered.
	if len(c.data)+len("/.s.PGSQL.65535") < 100 {
		settings["unix_socket_directories"] = c.data
	}
	for k, v := range c.opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", c.data}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.Dir = os.TempDir()
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		// Its own process group: a ^C at the terminal stops us, and postgres then gets
		// its fast shutdown from Stop or from the parent-death signal below.
		Setpgid: true,
		// If this process dies without Stop (kill -9, a test binary without TestMain),
		// the kernel asks postgres for a fast shutdown.
		Pdeathsig: syscall.SIGINT,
	}
	start := time.Now()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	if err := c.waitReady(ctx, p); err != nil {
		p.stop(syscall.SIGQUIT, 10*time.Second)
		return err
	}
	c.log.Debug("postgres accepts connections", "port", c.port, "took", time.Since(start))
	return nil
}

// waitReady polls until postgres accepts a connection, or fails with its log when it
// exits first.
func (c *Cluster) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.ServerURL("postgres"))
		ccancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgtest: postgres exited at start (%v):\n%s", p.err, c.out.String())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not accepting connections on port %d: %w (last error: %v)\n%s", c.port, ctx.Err(), err, c.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL returns the DSN of the cluster's database (Options.Database).
func (c *Cluster) URL() string { return c.ServerURL(c.opts.Database) }

// ServerURL returns the DSN of the named database on the cluster.
func (c *Cluster) ServerURL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// DataDir returns the cluster's data directory.
func (c *Cluster) DataDir() string { return c.data }

// Port returns the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// Log returns the tail of the server's log.
func (c *Cluster) Log() string { return c.out.String() }

// CreateDatabase creates a database on the cluster and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.createDatabase(ctx, name); err != nil {
		return "", err
	}
	return c.ServerURL(name), nil
}

func (c *Cluster) createDatabase(ctx context.Context, name string) error {
	return createDatabase(ctx, c.ServerURL("postgres"), name)
}

// createDatabase creates database name on the server at dsn unless it exists.
func createDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts postgres down (fast shutdown: open transactions roll back) and removes the
// temporary directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	var err error
	if p != nil {
		err = p.stop(syscall.SIGINT, 30*time.Second)
		c.log.Info("postgres stopped", "port", c.port)
	}
	c.removeRoot()
	return err
}

// Restart stops postgres with a fast shutdown and starts it again on the same port and
// data, as an operator's restart does: clients see their connections drop.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return errors.New("pgtest: restart of a stopped cluster")
	}
	if err := p.stop(syscall.SIGINT, 30*time.Second); err != nil {
		return err
	}
	if err := c.start(ctx); err != nil {
		return err
	}
	c.log.Info("postgres restarted", "port", c.port)
	return nil
}

func (c *Cluster) removeRoot() {
	if c.owned && c.root != "" {
		os.RemoveAll(c.root)
	}
}

// process is a running postgres. Its parent-death signal belongs to the thread that
// started it, so that thread stays locked to its goroutine until the process ends.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop sends sig and waits up to grace for the process to end, then kills it.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: signal postgres: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("pgtest: postgres did not stop within %v; killed", grace)
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sweep removes the temporary clusters of processes that died without stopping them
// (their postgres had a fast shutdown from the parent-death signal).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || alive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			if line, _, _ := strings.Cut(string(pm), "\n"); line != "" {
				if ppid, err := strconv.Atoi(line); err == nil && alive(ppid) {
					continue // still shutting down
				}
			}
		}
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
