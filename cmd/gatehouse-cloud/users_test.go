package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
)

// TestUserAdd creates the first admin from the command line and logs in as it.
func TestUserAdd(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.ForTest(t)
	getenv := func(string) string { return "" }
	var out, errOut bytes.Buffer
	args := []string{"--database-url", dsn, "--email", "Ops@Example.com", "--role", "admin"}
	if err := userAdd(ctx, args, getenv, strings.NewReader("a long admin password\n"), &out, &errOut); err != nil {
		t.Fatalf("user add: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "created admin ops@example.com") {
		t.Errorf("output %q", out.String())
	}
	err := userAdd(ctx, args, getenv, strings.NewReader("a long admin password\n"), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second user add: %v; want the email taken", err)
	}
	for _, bad := range [][]string{
		{"--database-url", dsn, "--email", "m@example.com", "--role", "facility_manager"}, // no facility
		{"--database-url", dsn, "--email", "m@example.com", "--role", "root"},
		{"--database-url", dsn, "--role", "admin"},
	} {
		if err := userAdd(ctx, bad, getenv, strings.NewReader("a long admin password\n"), &out, &errOut); err == nil {
			t.Errorf("user add %v: no error", bad)
		}
	}
	if err := userAdd(ctx, []string{"--database-url", dsn, "--email", "m@example.com", "--role", "admin"}, getenv,
		strings.NewReader("short\n"), &out, &errOut); err == nil {
		t.Error("a short password was taken")
	}

	db, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := auth.New(ctx, db, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := svc.Login(ctx, "ops@example.com", "a long admin password", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.AuthenticateToken(ctx, toks.AccessToken)
	if err != nil || p.Role != cloud.RoleAdmin {
		t.Errorf("principal %+v, %v; want an admin", p, err)
	}
	es, _ := db.AuditLog(ctx, postgres.AuditFilter{})
	if len(es) == 0 || es[len(es)-1].Action != "user.create" || !strings.HasPrefix(es[len(es)-1].Actor, "cli") {
		t.Errorf("audit = %+v; want user.create by cli", es)
	}
}
