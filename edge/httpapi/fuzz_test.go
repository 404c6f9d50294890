package httpapi

import (
	"testing"
)

// FuzzDecodeBody feeds arbitrary bodies to every request decoder: none may panic, every
// refusal must be a 4xx problem, and every accepted body must satisfy its validation.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"reason": "driver has no ticket"}`, `{"reason": 1}`,
		`{"amount": 400, "method": "kiosk_card", "reference": "auth 1"}`, `{"amount": -1, "method": "cash"}`,
		`{"amount": 1e400}`, `{"amount": "400"}`, `{"occupied": 3, "reason": "count"}`, `{"occupied": -3}`,
		`{"reason": "x", "extra": {}}`, `{"reason": "x"} trailing`, `{"reason": "\ud800"}`, "{\"reason\": \"\xff\"}",
		`{"reason": "x", "reason": ""}`, `{"amount": 9223372036854775808, "method": "cash"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		decoders := map[string]func() (validator, func() bool){
			"open": func() (validator, func() bool) {
				r := &openLaneRequest{}
				return r, func() bool { return r.Reason != "" }
			},
			"lane pay": func() (validator, func() bool) {
				r := &paymentRequest{methods: laneMethods}
				return r, func() bool { return r.Amount != nil && *r.Amount > 0 && *r.Amount <= maxAmount && r.Method != "" }
			},
			"session pay": func() (validator, func() bool) {
				r := &paymentRequest{methods: sessionMethods}
				return r, func() bool { return r.Amount != nil && *r.Amount > 0 && r.Method != "" }
			},
			"count": func() (validator, func() bool) {
				r := &countRequest{}
				return r, func() bool { return r.Occupied != nil && *r.Occupied >= 0 && r.Reason != "" }
			},
		}
		for name, mk := range decoders {
			dst, ok := mk()
			err := decodeBody(body, dst)
			if err == nil {
				if !ok() {
					t.Errorf("%s: decodeBody(%q) accepted %+v", name, body, dst)
				}
				continue
			}
			p := problemFor(err)
			if p.Status < 400 || p.Status >= 500 {
				t.Errorf("%s: decodeBody(%q) = %v -> status %d; want 4xx", name, body, err, p.Status)
			}
			if p.Status == 422 && len(p.Errors) == 0 {
				t.Errorf("%s: decodeBody(%q) = 422 naming no field", name, body)
			}
		}
	})
}
