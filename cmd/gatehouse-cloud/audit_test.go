package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/pgtest"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gatehouse-parking/gatehouse/edge/boltstore"
)

// TestCommandIsAudited runs the real binaries: `gatehouse-cloud command` with
// --database-url and --operator writes one audit entry per command, with the outcome
// the garage gave (done, refused) or the failure (garage offline); the garage records
// the operator in its own events.
func TestCommandIsAudited(t *testing.T) {
	cloudBin, edgeBin := buildBinaries(t)
	ctx := context.Background()
	pg, err := pgtest.Start(ctx, pgtest.Options{NoFsync: true})
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	t.Cleanup(func() { pg.Stop() })
	work := t.TempDir()
	cloudProc := startCloudArgs(t, cloudBin, work, "run", "--data-dir", work, "--database-url", pg.URL(),
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--leaf-listen", "127.0.0.1:0")
	const id = "garage-audit"
	creds := issueCredentials(t, cloudBin, work, id, "")
	e := &edgeProc{id: id, cfg: garageConfig(t, id), data: t.TempDir(), log: &syncBuffer{}}
	runEdge(t, edgeBin, e, "--hub-credentials", creds)
	waitFor(t, 20*time.Second, "the garage's leaf connection", func() bool { return metric(e.api, "gatehouse_hub_connected") == 1 })

	send := func(body string, extra ...string) (string, error) {
		args := append([]string{"command", "--data-dir", work, "--database-url", pg.URL()}, extra...)
		return cloudCommand(cloudBin, work, append(args, id, "open", body)...)
	}
	if out, err := send(`{"reason":"stuck ticket","lane":"entry-1"}`, "--operator", "ana"); err != nil || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("command: %v\n%s", err, out)
	}
	if out, err := send(`{"reason":"typo","lane":"entry-9"}`, "--operator", "ana"); err == nil || !strings.Contains(out, "refused") {
		t.Fatalf("command to a lane that does not exist: %v\n%s; want a refusal", err, out)
	}
	if out, err := send(`{"reason":"x","lane":"entry-1"}`); err == nil || !strings.Contains(out, "--operator is required") {
		t.Fatalf("command without an operator: %v\n%s; want --operator required", err, out)
	}
	if out, err := send(`{"operator":"bob","reason":"x","lane":"entry-1"}`, "--operator", "ana"); err == nil || !strings.Contains(out, `but the body says operator "bob"`) {
		t.Fatalf("command with two operators: %v\n%s", err, out)
	}
	e.cmd.Process.Kill()
	<-e.done
	waitFor(t, 20*time.Second, "the hub to see the garage gone", func() bool {
		out, _ := cloudCommand(cloudBin, work, "command", "--data-dir", work, id, "open", `{"operator":"probe","reason":"x","lane":"entry-1"}`)
		return strings.Contains(out, "garage offline")
	})
	if out, err := send(`{"operator":"bob","reason":"after hours","lane":"entry-1"}`); err == nil || !strings.Contains(out, "garage offline") {
		t.Fatalf("command to a stopped garage: %v\n%s; want garage offline", err, out)
	}

	db, err := postgres.Open(ctx, pg.URL(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.AuditLog(ctx, postgres.AuditFilter{Facility: id})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, target, outcome, reason string }{ // newest first
		{"cli:bob", "lane:" + id + "/entry-1", cloud.OutcomeFailed, "after hours"},
		{"cli:ana", "lane:" + id + "/entry-9", cloud.OutcomeDenied, "typo"},
		{"cli:ana", "lane:" + id + "/entry-1", cloud.OutcomeOK, "stuck ticket"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log holds %d entries for %s: %+v; want %d", len(got), id, got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Actor != w.actor || g.Action != "gate.command" || g.Target != w.target || g.Facility != id || g.Outcome != w.outcome ||
			g.Detail["reason"] != w.reason || g.Detail["verb"] != "open" {
			t.Errorf("audit entry %d = %+v; want actor %s, action gate.command, target %s, outcome %s, reason %q",
				i, g, w.actor, w.target, w.outcome, w.reason)
		}
	}
	if !strings.Contains(e.log.String(), "live command done") {
		t.Errorf("the garage did not log the command")
	}
	// The garage's own record, in its outbox, names the operator given by --operator.
	store, err := boltstore.Open(filepath.Join(e.data, "garage.db"), "", &boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := store.Events(0, 0)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	var opens []string
	for _, ev := range evs {
		if m := ev.GetGateManualOpen(); m != nil {
			opens = append(opens, m.Operator)
		}
	}
	if len(opens) != 1 || opens[0] != "cloud:ana" {
		t.Errorf("the garage's gate.manual_open events name operators %q; want [cloud:ana]", opens)
	}
	cloudProc.stop(t)
}
