package plate

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestVote(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	r := func(text string, conf float64) Read {
		return Read{Text: text, Confidence: conf, At: t0, Source: "cam-1"}
	}
	tests := []struct {
		name   string
		reads  []Read
		min    float64
		want   Result
		reason string // substring expected in Reason; "" means Reason must be empty
	}{
		{
			name:  "agreement",
			reads: []Read{r("AB-1234", 0.9), r("ab 1234", 0.9), r("AB1234", 0.9)},
			min:   0.5,
			want:  Result{Plate: "AB1234", Confidence: 0.9, Votes: 3, Total: 3},
		},
		{
			name:  "per-position vote fixes a minority misread",
			reads: []Read{r("AB1234", 0.8), r("A81234", 0.8), r("AB1234", 0.8)},
			min:   0.5,
			want:  Result{Plate: "AB1234", Confidence: 0.8, Votes: 3, Total: 3},
		},
		{
			name:  "per-position vote builds a plate no read had exactly",
			reads: []Read{r("A81234", 0.8), r("AB1Z34", 0.8), r("AB1234", 0.8)},
			min:   0.5,
			want:  Result{Plate: "AB1234", Confidence: 0.8, Votes: 3, Total: 3},
		},
		{
			name:  "minority other plate",
			reads: []Read{r("AB1234", 1), r("AB1234", 1), r("XY9876", 0.5)},
			min:   0.3,
			want:  Result{Plate: "AB1234", Confidence: 0.8, Votes: 2, Total: 3},
		},
		{
			name:  "reads below threshold are dropped",
			reads: []Read{r("AB1234", 0.9), r("XY9876", 0.2), r("XY9876", 0.2), r("XY9876", 0.2)},
			min:   0.5,
			want:  Result{Plate: "AB1234", Confidence: 0.9, Votes: 1, Total: 1},
		},
		{
			name:   "all below threshold",
			reads:  []Read{r("AB1234", 0.2), r("AB1234", 0.3)},
			min:    0.5,
			want:   Result{Unsure: true},
			reason: "no usable reads: 2 of 2 below confidence 0.50",
		},
		{
			name:   "tie between two plates",
			reads:  []Read{r("AB1234", 0.7), r("XY9876", 0.7)},
			min:    0.5,
			want:   Result{Total: 2, Unsure: true},
			reason: `tie between "AB1234" and "XY9876"`,
		},
		{
			name:   "winner below half the weight",
			reads:  []Read{r("AB1234", 0.8), r("CD5678", 0.6), r("EF9012", 0.6)},
			min:    0.5,
			want:   Result{Plate: "AB1234", Confidence: 0.4 * 0.8, Votes: 1, Total: 3, Unsure: true},
			reason: `"AB1234" holds only 40% of the confidence`,
		},
		{
			name:   "empty input",
			reads:  nil,
			min:    0.5,
			want:   Result{Unsure: true},
			reason: "no usable reads",
		},
		{
			name:   "only empty texts",
			reads:  []Read{r("", 0.9), r(" - ", 0.9), r("·", 0.9)},
			min:    0.5,
			want:   Result{Unsure: true},
			reason: "3 without plate text",
		},
		{
			name:  "NaN confidence is unusable, out-of-range is clamped",
			reads: []Read{r("AB1234", math.NaN()), r("AB1234", 1.7), r("AB1234", 1)},
			min:   0,
			want:  Result{Plate: "AB1234", Confidence: 1, Votes: 2, Total: 2},
		},
		{
			name:   "zero confidence everywhere",
			reads:  []Read{r("AB1234", 0), r("AB1234", 0)},
			min:    0,
			want:   Result{Total: 2, Unsure: true},
			reason: "zero confidence",
		},
		{
			name:   "tie inside a confusion class is noted, not hidden",
			reads:  []Read{r("AB1234", 0.8), r("A81234", 0.8)},
			min:    0.5,
			want:   Result{Plate: "A81234", Confidence: 0.8, Votes: 2, Total: 2},
			reason: `position 2: tie within "8B", chose '8'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Vote(tt.reads, tt.min)
			gotReason := got.Reason
			got.Reason = ""
			if got.Plate != tt.want.Plate || !near(got.Confidence, tt.want.Confidence) ||
				got.Votes != tt.want.Votes || got.Total != tt.want.Total || got.Unsure != tt.want.Unsure {
				t.Errorf("Vote(%v, %v) = %+v; want %+v", tt.reads, tt.min, got, tt.want)
			}
			switch {
			case tt.reason == "" && gotReason != "":
				t.Errorf("Vote(%v, %v).Reason = %q; want empty", tt.reads, tt.min, gotReason)
			case !strings.Contains(gotReason, tt.reason):
				t.Errorf("Vote(%v, %v).Reason = %q; want it to contain %q", tt.reads, tt.min, gotReason, tt.reason)
			}
			if got.Unsure && gotReason == "" {
				t.Errorf("Vote(%v, %v) is unsure without a reason", tt.reads, tt.min)
			}
		})
	}
}

// TestVoteOrderIndependent checks that shuffling reads does not change the
// result, so two lanes fed the same reads agree.
func TestVoteOrderIndependent(t *testing.T) {
	reads := []Read{
		{Text: "AB1234", Confidence: 0.8}, {Text: "A81234", Confidence: 0.8},
		{Text: "AB1Z34", Confidence: 0.6}, {Text: "XY9876", Confidence: 0.7},
	}
	want := Vote(reads, 0.5)
	for i := range reads {
		rot := append(append([]Read(nil), reads[i:]...), reads[:i]...)
		got := Vote(rot, 0.5)
		// Summation order may change the last bits of Confidence.
		same := got
		same.Confidence = want.Confidence
		if same != want || !near(got.Confidence, want.Confidence) {
			t.Errorf("Vote(%v, 0.5) = %+v; want %+v", rot, got, want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
