package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runInfo is what a running `gatehouse-cloud run` writes to <data-dir>/run.json, for
// the commands that talk to it from another process.
type runInfo struct {
	PID      int    `json:"pid"`
	API      string `json:"api"`
	NATS     string `json:"nats"`
	Leaf     string `json:"leaf"`
	Embedded bool   `json:"embedded"`
	// DatabaseURL is the DSN of the throwaway PostgreSQL the process started, for
	// the commands that need its database (user add); empty for a --database-url.
	DatabaseURL string `json:"database_url,omitempty"`
}

const runInfoFile = "run.json"

func writeRunInfo(dataDir string, info runInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, "."+runInfoFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dataDir, runInfoFile))
}

// removeRunInfo removes the file if this process wrote it.
func removeRunInfo(dataDir string) {
	if info, _ := readRunInfo(dataDir); info != nil && info.PID == os.Getpid() {
		os.Remove(filepath.Join(dataDir, runInfoFile))
	}
}

// readRunInfo returns what the gatehouse-cloud running on dataDir wrote, or nil when
// none runs (no file, or its process is gone).
func readRunInfo(dataDir string) (*runInfo, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, runInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var info runInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", runInfoFile, err)
	}
	if info.PID <= 0 || errors.Is(syscall.Kill(info.PID, 0), syscall.ESRCH) {
		return nil, nil // left by a process that died
	}
	return &info, nil
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir, given := dataDirFlag(fs, getenv)
	dsn := fs.String("database-url", getenv("GATEHOUSE_DATABASE_URL"), "PostgreSQL DSN; empty: the throwaway PostgreSQL kept in <data-dir>/pg (GATEHOUSE_DATABASE_URL)")
	logFormat := fs.String("log-format", env(getenv, "GATEHOUSE_LOG_FORMAT", "text"), "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(*logFormat, stderr)
	if *dsn == "" && !given() {
		return errors.New("migrate: give --database-url, or --data-dir of a kept throwaway PostgreSQL")
	}
	dataDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	url, _, stop, err := openDatabase(ctx, *dsn, dataDir, true, log)
	if err != nil {
		return err
	}
	defer stop()
	db, err := postgres.Open(ctx, url, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrate: the database is up to date")
	return nil
}

func facilityAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("facility add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir, _ := dataDirFlag(fs, getenv)
	advertise := fs.String("leaf-advertise", getenv("GATEHOUSE_LEAF_ADVERTISE"), "hub URL to write into the credentials (e.g. tls://hub.example.com:7422); empty: the one the hub recorded (GATEHOUSE_LEAF_ADVERTISE)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: gatehouse-cloud facility add [--data-dir DIR] ID")
	}
	id := pos[0]
	if err := natshub.ValidateFacility(id); err != nil {
		return fmt.Errorf("facility id %q: lower-case letters, digits and dashes, as in the garage's config", id)
	}
	dataDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	hubDir := filepath.Join(dataDir, "hub")
	if *advertise != "" {
		creds, err := cloudStore(hubDir, true)
		if err != nil {
			return err
		}
		creds.LeafURL = *advertise
		if err := creds.Save(hubDir); err != nil {
			return err
		}
	}
	user, _, err := natshub.AddFacility(hubDir, id)
	if err != nil {
		return err
	}
	path := filepath.Join(hubDir, natshub.IssuedDir, id+".json")
	fmt.Fprintf(stdout, "issued hub credentials for facility %s (hub user %s); earlier ones of %s no longer work\n", id, user, id)
	fmt.Fprintf(stdout, "credentials: %s\n", path)
	fmt.Fprintf(stdout, "copy that file to the garage (mode 600) and start it with: gatehouse-edge run --hub-credentials FILE; then delete it here\n")
	var issued natshub.GarageCredentials
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &issued) == nil && issued.URL == "" {
		fmt.Fprintf(stdout, "warning: the file has no hub URL (no hub has started on %s yet): start gatehouse-cloud and issue again, or pass --leaf-advertise URL\n", dataDir)
	}

	info, err := readRunInfo(dataDir)
	switch {
	case err != nil:
		return err
	case info == nil:
		fmt.Fprintf(stdout, "no gatehouse-cloud is running on %s: the hub applies the credentials when it starts\n", dataDir)
	case !info.Embedded:
		fmt.Fprintf(stdout, "external NATS cluster: copy %s to every node and reload them (nats-server --signal reload)\n",
			filepath.Join(hubDir, natshub.UsersConfFile))
	default:
		if err := requestReload(ctx, hubDir, info.NATS); err != nil {
			fmt.Fprintf(stdout, "could not reload the running hub (%v): send it SIGHUP (kill -HUP %d) or restart it\n", err, info.PID)
			return nil
		}
		fmt.Fprintln(stdout, "hub reloaded: the garage can connect now")
	}
	return nil
}

// requestReload asks the running embedded hub at url to reload its credential store.
func requestReload(ctx context.Context, hubDir, url string) error {
	creds, err := cloudStore(hubDir, false)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, nats.Name("gatehouse-cloud facility add"), nats.UserInfo(natshub.CloudUser, creds.CloudPassword))
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, reloadSubject, nil)
	if err != nil {
		return err
	}
	if s := string(m.Data); s != "ok" {
		return errors.New(s)
	}
	return nil
}

func command(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("command", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir, _ := dataDirFlag(fs, getenv)
	natsURL := fs.String("nats-url", getenv("GATEHOUSE_NATS_URL"), "the hub's client URL; empty: the embedded hub of the gatehouse-cloud running on --data-dir (GATEHOUSE_NATS_URL)")
	natsCA := fs.String("nats-ca", getenv("GATEHOUSE_NATS_CA"), "CA certificate file for a tls:// --nats-url (GATEHOUSE_NATS_CA)")
	dsn := fs.String("database-url", getenv("GATEHOUSE_DATABASE_URL"), "the cloud's PostgreSQL: the command is written to its audit log (GATEHOUSE_DATABASE_URL); empty: not audited")
	operator := fs.String("operator", getenv("GATEHOUSE_OPERATOR"), "who sends the command, for the audit log and the garage's events; empty: the body's \"operator\" (GATEHOUSE_OPERATOR)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the garage's answer")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return errors.New(`usage: gatehouse-cloud command [--data-dir DIR] [--operator NAME --database-url DSN] FACILITY VERB JSON
  verbs the garage serves: open {"operator","reason","lane"}, reset_count {"operator","reason","zone","occupied"}, resend {"from"}`)
	}
	facility, verb, body := pos[0], pos[1], pos[2]
	var fields map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber() // a body written back keeps its numbers as given
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		return fmt.Errorf("command body is not a JSON object: %s", body)
	}
	if op, _ := fields["operator"].(string); *operator != "" && op != "" && op != *operator {
		return fmt.Errorf("--operator %q, but the body says operator %q", *operator, op)
	} else if *operator == "" {
		*operator = op
	} else if op == "" && verb != "resend" {
		// The garage records the operator too.
		fields["operator"] = *operator
		b, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		body = string(b)
	}
	var db *postgres.DB
	if *dsn != "" {
		if *operator == "" {
			return errors.New("--operator is required to audit the command (--database-url)")
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if db, err = postgres.Open(ctx, *dsn, log); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		defer db.Close()
	}
	hub, err := connectHub(ctx, *dir, *natsURL, *natsCA, *timeout, stderr)
	if err != nil {
		return err
	}
	defer hub.Shutdown()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := hub.Command(cctx, facility, verb, []byte(body))
	var r struct {
		OK      *bool  `json:"ok"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	outcome, result := cloud.OutcomeOK, error(nil)
	switch {
	case errors.Is(err, natshub.ErrOffline):
		outcome, result = cloud.OutcomeFailed, fmt.Errorf("garage offline: %s is not connected to the hub (or does not serve %q)", facility, verb)
	case err != nil:
		outcome, result = cloud.OutcomeFailed, err
	default:
		fmt.Fprintf(stdout, "%s\n", reply)
		if json.Unmarshal(reply, &r) == nil && r.OK != nil && !*r.OK {
			outcome, result = cloud.OutcomeDenied, fmt.Errorf("garage %s refused: %s (%s)", facility, r.Message, r.Code)
		}
	}
	if db == nil {
		return result
	}
	detail := map[string]any{"verb": verb}
	if reason, _ := fields["reason"].(string); reason != "" {
		detail["reason"] = reason
	}
	if result != nil {
		detail["error"] = result.Error()
	}
	if r.Code != "" {
		detail["code"] = r.Code
	}
	entry := cloud.AuditEntry{Actor: "cli:" + *operator, Action: "gate.command", Target: commandTarget(facility, fields),
		Facility: facility, Outcome: outcome, Detail: detail}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer acancel()
	if err := db.Audit(actx, entry); err != nil {
		// The command went out: say so, and that its audit entry is missing.
		return errors.Join(result, fmt.Errorf("the command was sent (outcome %s) but its audit entry was not written: %w", outcome, err))
	}
	return result
}

// commandTarget names what a live command acts on, for the audit log: a lane, a zone
// or the facility.
func commandTarget(facility string, fields map[string]any) string {
	if lane, _ := fields["lane"].(string); lane != "" {
		return "lane:" + facility + "/" + lane
	}
	if zone, _ := fields["zone"].(string); zone != "" {
		return "zone:" + facility + "/" + zone
	}
	return "facility:" + facility
}

// connectHub connects a command to the hub as the cloud user: to natsURL (with the CA
// file natsCA for tls://) or, when empty, to the embedded hub of the gatehouse-cloud
// running on dir. The cloud user's password is in dir's credential store either way.
func connectHub(ctx context.Context, dir, natsURL, natsCA string, timeout time.Duration, stderr io.Writer) (*natshub.Hub, error) {
	dataDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	hubDir := filepath.Join(dataDir, "hub")
	creds, err := cloudStore(hubDir, false)
	if err != nil {
		return nil, err
	}
	url := natsURL
	if url == "" {
		info, err := readRunInfo(dataDir)
		if err != nil {
			return nil, err
		}
		if info == nil {
			return nil, fmt.Errorf("no gatehouse-cloud is running on %s; give --nats-url for an external hub", dataDir)
		}
		url = info.NATS
	}
	opts := cloudAuth(creds, natsCA)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return natshub.Start(natshub.Config{ExternalURL: url, ExternalOptions: opts, Replicas: streamReplicas(ctx, url, opts),
		CommandTimeout: timeout, Logger: log})
}

// streamReplicas is the replica count of the hub's events stream, so that connecting
// to a running hub does not try to change its streams; 0 when unknown.
func streamReplicas(ctx context.Context, url string, opts []nats.Option) int {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return 0
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natshub.EventsStream)
	if err != nil {
		return 0
	}
	return s.CachedInfo().Config.Replicas
}
