package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
)

// TestDeniedSensitiveActionsAudited: a gate command refused by the access rules (an
// operator of another garage, a driver, no credentials) is in the audit log as denied,
// with who tried; a refused read is not.
func TestDeniedSensitiveActionsAudited(t *testing.T) {
	e := newAuthEnv(t, httpapi.Config{Hub: &fakeHub{online: map[string]bool{}}})
	seedGarage(t, e.db, "lot-a", false)
	opB := loginAs(t, e, cloud.RoleOperator, "lot-b")
	drv := loginAs(t, e, cloud.RoleDriver)
	body := `{"reason":"let me in"}`
	for _, tc := range []struct {
		who    string
		header []string
		status int
	}{
		{"operator of B", bearer(opB), http.StatusForbidden},
		{"driver", bearer(drv), http.StatusForbidden},
		{"nobody", nil, http.StatusUnauthorized},
	} {
		if res := e.do(http.MethodPost, "/v1/facilities/lot-a/lanes/entry-1/open", body, tc.header...); res.Status != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.who, res.Status, res.Body, tc.status)
		}
	}
	if res := e.do(http.MethodGet, "/v1/facilities/lot-a/sessions", nil, bearer(opB)...); res.Status != http.StatusForbidden {
		t.Fatalf("operator of B reading A's sessions: %d", res.Status)
	}
	log := auditOf(t, e.db, "lot-a")
	if len(log) != 3 {
		t.Fatalf("audit of lot-a: %d entries %+v; want the 3 refused gate commands", len(log), log)
	}
	actors := map[string]bool{}
	for _, en := range log {
		if en.Action != "gate.open" || en.Outcome != cloud.OutcomeDenied || en.Target != "/v1/facilities/lot-a/lanes/entry-1/open" {
			t.Errorf("entry %+v; want gate.open denied on the lane's path", en)
		}
		actors[en.Actor] = true
	}
	if !actors["anonymous"] || len(actors) != 3 {
		t.Errorf("actors %v; want the operator, the driver and anonymous", actors)
	}
}
