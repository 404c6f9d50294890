// Command gatehouse-cloud runs the fleet's side of Gatehouse: the NATS hub every
// garage joins as a leaf node (embedded, or an external cluster), the ingest of the
// garages' events into PostgreSQL (a throwaway server when no DSN is given), and the
// HTTP probes, metrics and facility status.
//
//	gatehouse-cloud run [--database-url DSN] [--data-dir DIR] [--nats-url URL]
//	gatehouse-cloud migrate --database-url DSN
//	gatehouse-cloud facility add ID
//	gatehouse-cloud user add --email E --role ROLE [--facility F ...]
//	gatehouse-cloud command FACILITY VERB JSON
//	gatehouse-cloud publish [--version N] FACILITY KIND FILE|-
//
// docs/deployment.md describes a fleet's deployment.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-cloud:", err)
		os.Exit(1)
	}
}

const usage = `usage: gatehouse-cloud <command> [flags]

commands:
  run                         run the hub, the ingest and the HTTP endpoints (default)
  migrate                     apply the database migrations and exit
  facility add ID             issue (or rotate) a garage's hub credentials
  user add --email E --role R create an account, e.g. the first admin:
                              user add --email ops@example.com --role admin < password.txt
  command FACILITY VERB JSON  send a live command to a garage, e.g.
                              command lot-17 open '{"operator":"ana","reason":"stuck ticket","lane":"entry-1"}'
  publish FACILITY KIND FILE|-
                              publish a garage's permits, reservations or blocklist (JSON)
                              as the next version, e.g. publish lot-17 blocklist blocked.json
  version                     print the version

Run "gatehouse-cloud <command> -h" for a command's flags.
`

// version is set by the linker.
var version = "dev"

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runCloud(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "facility":
		if len(args) == 0 || args[0] != "add" {
			return fmt.Errorf("usage: gatehouse-cloud facility add ID\n%s", usage)
		}
		return facilityAdd(ctx, args[1:], getenv, stdout, stderr)
	case "command":
		return command(ctx, args, getenv, stdout, stderr)
	case "user":
		if len(args) == 0 || args[0] != "add" {
			return fmt.Errorf("usage: gatehouse-cloud user add --email E --role ROLE\n%s", usage)
		}
		return userAdd(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "publish":
		return publish(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "gatehouse-cloud", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// env returns getenv(key) or def.
func env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// defaultDataDir is the data directory when neither --data-dir nor
// GATEHOUSE_CLOUD_DATA names one.
const defaultDataDir = "./gatehouse-cloud-data"

// dataDirFlag adds --data-dir to fs. given reports, after parsing, whether the
// directory was chosen (flag or environment) rather than defaulted: only then is a
// throwaway PostgreSQL kept in it.
func dataDirFlag(fs *flag.FlagSet, getenv func(string) string) (dir *string, given func() bool) {
	envDir := getenv("GATEHOUSE_CLOUD_DATA")
	dir = fs.String("data-dir", env(getenv, "GATEHOUSE_CLOUD_DATA", defaultDataDir),
		"data directory: the embedded hub (hub/: JetStream store, credential store, issued credentials) and, when given, the throwaway PostgreSQL (pg/) (GATEHOUSE_CLOUD_DATA)")
	return dir, func() bool {
		set := envDir != ""
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "data-dir" {
				set = true
			}
		})
		return set
	}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
