package edge_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestApplyCredentials(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	h.enterByPlate("AB123CD") // permit P1 inside

	// The cloud's permit list replaces the config's: P1 stays (still inside), a new
	// permit appears, SHARED and OLD are gone.
	doc := &gh.CredentialsReplaced{Kind: "permits", Version: 3, Permits: []*gh.Permit{
		{Id: "P1", Plates: []string{"AB123CD"}, From: timestamppb.New(t0.Add(-time.Hour)), Until: timestamppb.New(t0.Add(time.Hour * 24))},
		{Id: "P9", Plates: []string{"NEW900"}, From: timestamppb.New(t0.Add(-time.Hour)), Until: timestamppb.New(t0.Add(time.Hour * 24))},
	}}
	if ok, err := h.g.ApplyCredentials(ctx, doc); err != nil || !ok {
		t.Fatalf("ApplyCredentials = %v, %v; want applied", ok, err)
	}
	if ok, err := h.g.ApplyCredentials(ctx, doc); err != nil || ok {
		t.Fatalf("same version again = %v, %v; want ignored", ok, err)
	}
	old := &gh.CredentialsReplaced{Kind: "permits", Version: 2}
	if ok, _ := h.g.ApplyCredentials(ctx, old); ok {
		t.Fatal("an older version was applied")
	}
	block := &gh.CredentialsReplaced{Kind: "blocklist", Version: 1, Blocklist: []*gh.BlockEntry{{Plate: "EVIL01", Reason: "fraud"}}}
	if ok, err := h.g.ApplyCredentials(ctx, block); err != nil || !ok {
		t.Fatalf("blocklist = %v, %v", ok, err)
	}
	if _, err := h.g.ApplyCredentials(ctx, &gh.CredentialsReplaced{Kind: "nope", Version: 1}); edge.ErrorCode(err) != edge.EINVALID {
		t.Fatalf("unknown kind: err = %v", err)
	}
	check := func() {
		t.Helper()
		v := h.present("in", func() { h.plate("in-cam", "NEW900", 0.9) })
		if v.Decision == nil || v.Decision.Reason != "permit" {
			t.Fatalf("new permit: %+v", v.Decision)
		}
		h.passThrough("in")
		v = h.present("in", func() { h.plate("in-cam", "FAM001", 0.9) })
		if v.Decision == nil || v.Decision.Reason != "transient" {
			t.Fatalf("removed permit: %+v; want a walk-in", v.Decision)
		}
		h.passThrough("in")
		v = h.present("in", func() { h.plate("in-cam", "EVIL01", 0.9) })
		if v.Decision == nil || v.Decision.Reason != "blocklisted" {
			t.Fatalf("blocked plate: %+v", v.Decision)
		}
		h.loop("in-arm", false)
		if p := h.g.State().Permits["P1"]; p == nil || p.Inside != 1 {
			t.Fatalf("P1 = %+v; want still 1 inside", p)
		}
		if h.g.DocumentVersion("permits") != 3 {
			t.Fatalf("version = %d; want 3", h.g.DocumentVersion("permits"))
		}
	}
	check()
	h.checkConsistent()
	// After a restart the cloud's lists still win over the config file's.
	h.reopen()
	check()
	h.checkConsistent()
}
