package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestARM64BuildRuns runs the pure-Go linux/arm64 build (the Raspberry Pi target)
// under qemu-aarch64-static: it must validate the example garage and verify a
// database it writes itself. make test installs qemu-user-static.
func TestARM64BuildRuns(t *testing.T) {
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Fatal("qemu-aarch64-static not found: run `make test`, which installs qemu-user-static")
	}
	bin := os.Getenv("GATEHOUSE_ARM64_BINARY")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "gatehouse-edge-arm64")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cross build: %v\n%s", err, out)
		}
	}
	out, err := exec.Command("file", bin).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "ARM aarch64") {
		t.Fatalf("%s is not an arm64 binary: %s", bin, out)
	}
	out, err = exec.Command(qemu, bin, "check-config", "../../deploy/garage-example.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: facility demo-garage") {
		t.Fatalf("arm64 check-config: %v\n%s", err, out)
	}
	data := t.TempDir()
	// Let it run a few seconds of traffic, then verify what it wrote with the arm64 build.
	out, err = exec.Command("timeout", "--signal=INT", "4", qemu, bin, "run", "--config", "../../deploy/garage-example.yaml",
		"--data", data, "--listen", "127.0.0.1:0", "--traffic", "600", "--dwell", "1s", "--travel", "10ms").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 124) { // 124: stopped by timeout, as intended
		t.Fatalf("arm64 run: %v\n%s", err, out)
	}
	out, err = exec.Command(qemu, bin, "verify", "--config", "../../deploy/garage-example.yaml", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state equals replayed outbox") {
		t.Fatalf("arm64 verify: %v\n%s", err, out)
	}
	t.Logf("arm64: %s", strings.TrimSpace(string(out)))
}
