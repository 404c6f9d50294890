package payment_test

import (
	"testing"

	"github.com/gatehouse-parking/gatehouse/cloud/payment"
)

func TestAdvances(t *testing.T) {
	for _, tc := range []struct {
		from, to payment.Status
		want     bool
	}{
		{payment.StatusPending, payment.StatusSucceeded, true},
		{payment.StatusProcessing, payment.StatusSucceeded, true},
		{payment.StatusSucceeded, payment.StatusProcessing, false},
		{payment.StatusSucceeded, payment.StatusFailed, false},
		{payment.StatusSucceeded, payment.StatusCanceled, false},
		{payment.StatusCanceled, payment.StatusSucceeded, false},
		{payment.StatusFailed, payment.StatusSucceeded, true},
		{payment.StatusFailed, payment.StatusCanceled, true},
		{payment.StatusSucceeded, payment.StatusPartiallyRefunded, true},
		{payment.StatusPartiallyRefunded, payment.StatusPartiallyRefunded, false},
		{payment.StatusRefunded, payment.StatusSucceeded, false},
		{payment.StatusSucceeded, payment.StatusSucceeded, false},
		{payment.StatusPending, "bogus", false},
	} {
		if got := payment.Advances(tc.from, tc.to); got != tc.want {
			t.Errorf("Advances(%s, %s) = %v; want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestTokenProblem(t *testing.T) {
	for _, tc := range []struct {
		tok string
		ok  bool
	}{
		{"pm_card_visa", true},
		{"pm_1NxYzAbC2eZvKYlo2CdEfGh", true},
		{"", false},
		{"4242424242424242", false},
		{"4242 4242 4242 4242", false},
		{"4242-4242-4242-4242", false},
		{"pm_4242424242424242", false},
		{"pm card", false},
		{"pm_<script>", false},
	} {
		if got := payment.TokenProblem(tc.tok) == ""; got != tc.ok {
			t.Errorf("TokenProblem(%q) ok = %v; want %v", tc.tok, got, tc.ok)
		}
	}
}

// FuzzTokenProblem: no accepted token holds 12 digits in a run, whatever the
// separators.
func FuzzTokenProblem(f *testing.F) {
	for _, s := range []string{"pm_card_visa", "4242 4242 4242 4242", "pm_1234-5678-9012", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if payment.TokenProblem(tok) != "" {
			return
		}
		digits := 0
		for _, r := range tok {
			if r >= '0' && r <= '9' {
				digits++
				if digits >= 12 {
					t.Fatalf("TokenProblem(%q) accepted 12 digits in a run", tok)
				}
			} else {
				digits = 0
			}
		}
	})
}
