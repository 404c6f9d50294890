package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge/httpapi"
)

// TestServe runs the app on a real listener: the body limit is enforced by the
// server before routing, which app.Test does not show, and Serve must stop when its
// context ends.
func TestServe(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.Serve(ctx, e.app, ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}

	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d; want 200", resp.StatusCode)
	}

	// The app takes bodies up to MaxPushBody (camera pushes); /v1 refuses more than
	// BodyLimit once the body is in.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	big := `{"reason": "` + strings.Repeat("x", httpapi.BodyLimit) + `"}`
	fmt.Fprintf(conn, "POST /v1/lanes/in/open HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", aliceToken, len(big), big)
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != httpapi.ProblemContentType {
		t.Fatalf("huge body = %d %s %s; want 413 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != 413 || p.Instance != "/v1/lanes/in/open" {
		t.Fatalf("413 problem = %s (%v)", body, err)
	}
	if v, _ := e.metric("gatehouse_http_bad_requests_total"); v != 1 {
		t.Errorf("bad requests after a huge body = %v; want 1", v)
	}
	if cmds := e.bars["in-bar"].Commands(); len(cmds) != 0 {
		t.Errorf("barrier commands = %v; want none", cmds)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v; want nil after the context ended", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}
