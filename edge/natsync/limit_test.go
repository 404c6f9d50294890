package natsync

import (
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	var l logLimit
	if !l.ok("a") || l.ok("a") || !l.ok("b") || l.ok("b") {
		t.Fatal("logLimit: want a new message through at once and a repeat held back")
	}
	l.lastLog = l.lastLog.Add(-2 * time.Minute)
	if !l.ok("b") {
		t.Fatal("logLimit: want a repeat through after a minute")
	}
}
