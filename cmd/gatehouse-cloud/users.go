package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"golang.org/x/term"
)

// stringsFlag is a flag that may be repeated.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// userAdd creates an account from the command line: the way to make the first admin.
//
//	gatehouse-cloud user add --email E --role admin [--facility F ...] [--password-file F]
func userAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir, given := dataDirFlag(fs, getenv)
	dsn := fs.String("database-url", getenv("GATEHOUSE_DATABASE_URL"), "PostgreSQL DSN; empty: the database of the gatehouse-cloud running on --data-dir, or the throwaway PostgreSQL kept there (GATEHOUSE_DATABASE_URL)")
	email := fs.String("email", "", "the account's email (required)")
	name := fs.String("name", "", "the account's display name")
	role := fs.String("role", "", fmt.Sprintf("the account's role: one of %v (required)", cloud.Roles))
	var facilities stringsFlag
	fs.Var(&facilities, "facility", "a facility an operator or facility manager is assigned to; repeat for several")
	pwFile := fs.String("password-file", "", `file holding the password on its first line; "-" or empty: read it from standard input (prompted, not echoed, on a terminal)`)
	logFormat := fs.String("log-format", env(getenv, "GATEHOUSE_LOG_FORMAT", "text"), "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *email == "" || *role == "" {
		return errors.New("usage: gatehouse-cloud user add --email E --role ROLE [--facility F ...] [--name N] [--password-file F] [--database-url DSN | --data-dir DIR]")
	}
	r := cloud.Role(*role)
	if !r.Valid() {
		return fmt.Errorf("--role %q: one of %v", *role, cloud.Roles)
	}
	password, err := readPassword(*pwFile, stdin, stderr)
	if err != nil {
		return err
	}
	if p := cloud.PasswordProblem(password); p != "" {
		return fmt.Errorf("the password %s", p)
	}

	log := newLogger(*logFormat, stderr)
	url := *dsn
	if url == "" {
		if !given() {
			return errors.New("user add: give --database-url, or --data-dir of the cloud's data directory")
		}
		dataDir, err := filepath.Abs(*dir)
		if err != nil {
			return err
		}
		// A running cloud on a throwaway PostgreSQL owns it: use its DSN. Otherwise
		// start the one kept in the data directory.
		info, err := readRunInfo(dataDir)
		if err != nil {
			return err
		}
		if info != nil && info.DatabaseURL != "" {
			url = info.DatabaseURL
		} else {
			var stop func()
			if url, _, stop, err = openDatabase(ctx, "", dataDir, true, log); err != nil {
				return err
			}
			defer stop()
		}
	}
	db, err := postgres.Open(ctx, url, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	svc, err := auth.New(ctx, db, auth.Options{Logger: log})
	if err != nil {
		return err
	}
	u, err := svc.CreateUser(ctx, *email, *name, password, r, facilities)
	if err != nil {
		return fmt.Errorf("user add: %s", cloud.ErrorMessage(err))
	}
	actor := "cli"
	if cur, err := user.Current(); err == nil {
		actor = "cli:" + cur.Username
	}
	e := cloud.AuditEntry{Actor: actor, Action: "user.create", Target: "user:" + u.ID, Outcome: cloud.OutcomeOK,
		Detail: map[string]any{"email": u.Email, "role": u.Role, "facilities": u.Facilities}}
	if err := db.Audit(ctx, e); err != nil {
		log.Error("audit entry not written", "err", err)
	}
	fmt.Fprintf(stdout, "created %s %s (id %s)", u.Role, u.Email, u.ID)
	if len(u.Facilities) > 0 {
		fmt.Fprintf(stdout, " for %s", strings.Join(u.Facilities, ", "))
	}
	fmt.Fprintln(stdout)
	if r.Staff() {
		fmt.Fprintln(stdout, "log in at POST /v1/auth/login, then enrol a second factor: POST /v1/auth/totp and /v1/auth/totp/confirm")
	}
	return nil
}

// readPassword reads the first line of the file, or of stdin for "" or "-",
// prompting without echo when stdin is a terminal.
func readPassword(file string, stdin io.Reader, prompt io.Writer) (string, error) {
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		return firstLine(f)
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "again: ")
		b2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(b) != string(b2) {
			return "", errors.New("the passwords differ")
		}
		return string(b), nil
	}
	return firstLine(stdin)
}

func firstLine(r io.Reader) (string, error) {
	s := bufio.NewScanner(io.LimitReader(r, 4096))
	if !s.Scan() {
		if err := s.Err(); err != nil {
			return "", err
		}
		return "", errors.New("no password given")
	}
	return strings.TrimRight(s.Text(), "\r"), nil
}
