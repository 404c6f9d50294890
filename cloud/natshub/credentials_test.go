package natshub_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

func TestValidateFacility(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"garage-17", true},
		{"0lot", true},
		{strings.Repeat("x", 63), true},
		{strings.Repeat("x", 64), false},
		{"", false},
		{"-a", false},
		{"Garage", false},
		{"a.b", false},
		{"a*", false},
		{"a>", false},
		{"a_b", false},
		{"a b", false},
	} {
		if err := natshub.ValidateFacility(tc.id); (err == nil) != tc.ok {
			t.Errorf("ValidateFacility(%q) = %v; want ok=%v", tc.id, err, tc.ok)
		}
	}
	if _, _, err := natshub.AddFacility(t.TempDir(), "a.b"); !errors.Is(err, natshub.ErrInvalidFacility) {
		t.Errorf("AddFacility(a.b) = %v; want ErrInvalidFacility", err)
	}
}

func TestAddFacilityIssuesRotatesAndRemoves(t *testing.T) {
	dir := t.TempDir()
	user, secret, err := natshub.AddFacility(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	if user != "fac-a" || len(secret) < 32 {
		t.Fatalf("AddFacility = %q, %q; want user fac-a and a long secret", user, secret)
	}
	store, err := os.ReadFile(filepath.Join(dir, natshub.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(store), secret) {
		t.Fatal("the credential store holds the garage's secret in clear")
	}
	creds, err := natshub.LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(creds.Facilities["a"].PasswordHash), []byte(secret)); err != nil {
		t.Fatalf("stored hash does not match the secret: %v", err)
	}
	var issued natshub.GarageCredentials
	data, err := os.ReadFile(filepath.Join(dir, natshub.IssuedDir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &issued); err != nil {
		t.Fatal(err)
	}
	want := natshub.GarageCredentials{Facility: "a", User: "fac-a", Password: secret, HubDomain: "hub", InboxPrefix: "_INBOX_a"}
	if issued != want {
		t.Fatalf("issued file = %+v; want %+v", issued, want)
	}
	for _, f := range []string{natshub.CredentialsFile, natshub.UsersConfFile, filepath.Join(natshub.IssuedDir, "a.json")} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}

	// Rotation: a new secret, the old one no longer matches.
	_, secret2, err := natshub.AddFacility(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	creds, _ = natshub.LoadCredentials(dir)
	if secret2 == secret || bcrypt.CompareHashAndPassword([]byte(creds.Facilities["a"].PasswordHash), []byte(secret)) == nil {
		t.Fatal("rotation kept the old secret valid")
	}
	if err := natshub.RemoveFacility(dir, "a"); err != nil {
		t.Fatal(err)
	}
	creds, _ = natshub.LoadCredentials(dir)
	if _, ok := creds.Facilities["a"]; ok {
		t.Fatal("RemoveFacility left the facility in the store")
	}
}

// TestReloadCredentials issues, rotates and removes a garage's credentials on a
// running hub.
func TestReloadCredentials(t *testing.T) {
	h, _ := startHub(t, t.TempDir())
	hub := h.Server()
	user, secret := issue(t, h, "c")
	old := startConnectedEdge(t, h, "c", user, secret)

	// Rotation disconnects the old credentials; the new ones connect.
	_, secret2 := issue(t, h, "c")
	waitFor(t, "the old credentials to be disconnected", func() bool { return hub.NumLeafNodes() == 0 })
	time.Sleep(300 * time.Millisecond) // several reconnect attempts
	if old.NumLeafNodes() != 0 {
		t.Fatal("the rotated credentials connected again")
	}
	startConnectedEdge(t, h, "c", user, secret2)

	// Removal disconnects the garage.
	if err := natshub.RemoveFacility(h.Dir(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadCredentials(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed garage to be disconnected", func() bool { return hub.NumLeafNodes() == 0 })
}

// TestHubRestartKeepsStateAndCredentials restarts the hub on the same directory.
func TestHubRestartKeepsStateAndCredentials(t *testing.T) {
	dir := t.TempDir()
	h, _ := startHub(t, dir)
	user, secret := issue(t, h, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.JetStream().PublishMsg(ctx, event(t, "a", "a", 1)); err != nil {
		t.Fatal(err)
	}
	h.Shutdown()

	h2, _ := startHub(t, dir)
	if n := streamMsgs(t, h2, natshub.EventsStream); n != 1 {
		t.Fatalf("after a restart %s holds %d messages; want 1", natshub.EventsStream, n)
	}
	edge := startConnectedEdge(t, h2, "a", user, secret)
	nc := edgeConn(t, edge, "a")
	js, _ := jetstream.NewWithDomain(nc, natshub.Domain)
	waitInterest(t, edge, "gh.fac.a.evt.x")
	if ack, err := js.PublishMsg(ctx, event(t, "a", "a", 1)); err != nil || !ack.Duplicate {
		t.Fatalf("re-publish of a:1 after the restart = %+v, %v; want a duplicate", ack, err)
	}
}

// TestExternalClusterFromUsersConf runs nats-server from a configuration that includes
// the generated users.conf, as a production cluster node does, and uses it as an
// external hub.
func TestExternalClusterFromUsersConf(t *testing.T) {
	dir := t.TempDir()
	user, secret, err := natshub.AddFacility(dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := natshub.AddFacility(dir, "b"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "hub.conf")
	if err := os.WriteFile(conf, []byte(`
server_name: hub-1
host: 127.0.0.1
port: -1
jetstream { store_dir: "`+filepath.Join(dir, "js")+`", domain: hub, sync_interval: "1s" }
leafnodes { host: 127.0.0.1, port: -1, isolate_leafnode_interest: true }
include users.conf
`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server does not accept the generated users.conf: %v", err)
	}
	var facUser *server.User
	for _, u := range opts.Users {
		if u.Username == user {
			facUser = u
		}
	}
	if facUser == nil {
		t.Fatalf("users.conf has no user %s", user)
	}
	if !reflect.DeepEqual(facUser.Permissions, natshub.FacilityPermissions("a")) {
		t.Errorf("users.conf permissions of %s = %+v; want %+v", user, facUser.Permissions, natshub.FacilityPermissions("a"))
	}
	if _, ok := facUser.AllowedConnectionTypes["LEAFNODE"]; !ok || len(facUser.AllowedConnectionTypes) != 1 {
		t.Errorf("users.conf connection types of %s = %v; want LEAFNODE only", user, facUser.AllowedConnectionTypes)
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}

	creds, err := natshub.LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	leafURL := "nats-leaf://127.0.0.1:" + itoa(uint64(opts.LeafNode.Port))
	h, err := natshub.Start(natshub.Config{
		ExternalURL:     srv.ClientURL(),
		ExternalOptions: []nats.Option{nats.UserInfo(natshub.CloudUser, creds.CloudPassword)},
		Replicas:        1, // a single node here; 3 in a cluster
		LeafAdvertise:   leafURL,
	})
	if err != nil {
		t.Fatalf("Start with an external cluster: %v", err)
	}
	t.Cleanup(h.Shutdown)
	if err := h.ReloadCredentials(); !errors.Is(err, natshub.ErrExternal) {
		t.Errorf("ReloadCredentials on an external hub = %v; want ErrExternal", err)
	}

	edge := startConnectedEdge(t, h, "a", user, secret)
	nc := edgeConn(t, edge, "a")
	waitInterest(t, edge, "gh.fac.a.evt.x")
	js, _ := jetstream.NewWithDomain(nc, natshub.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, event(t, "a", "a", 1)); err != nil {
		t.Fatalf("publish through the external hub: %v", err)
	}
	if _, err := js.PublishMsg(ctx, event(t, "b", "b", 1)); err == nil {
		t.Fatal("A published B's event through the external hub")
	}
	if n := streamMsgs(t, h, natshub.EventsStream); n != 1 {
		t.Fatalf("%s holds %d messages; want 1", natshub.EventsStream, n)
	}
}
