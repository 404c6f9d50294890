package httpapi

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	storedPlate   = regexp.MustCompile(`^[A-Z0-9]{2,12}$`) // vehicles.plate's CHECK
	storedCountry = regexp.MustCompile(`^[A-Z]{2}$`)
)

// FuzzDecodeCommandRequests feeds any body to the decoders of the gate commands and
// of vehicle registration: they never panic, every refusal is a 4xx problem, and what
// they accept is what the garage and the schema accept (a reason of 1 to 200
// characters, a count of 0 or more, a normalised plate and an ISO country).
func FuzzDecodeCommandRequests(f *testing.F) {
	for _, s := range []string{
		`{"reason":"ticket machine jammed"}`,
		`{"occupied":12,"reason":"recount"}`,
		`{"occupied":-1,"reason":""}`,
		`{"occupied":"12","reason":1}`,
		`{"plate":"ab-123 cd","country":"de","nickname":"Blue"}`,
		`{"plate":"'; DROP TABLE vehicles;--","country":"DE"}`,
		`{"plate":"Ö·Ł 12","country":"pl"}`,
		`{"reason":"x"}{"reason":"y"}`,
		`{"reason":"x","operator":"y"}`,
		`[1,2,3]`, `null`, `"x"`, ``, `{`, `{"reason":"\u0000"}`,
		`{"occupied":1e400}`, `{"occupied":9223372036854775808}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(name string, err error) bool {
			if err == nil {
				return true
			}
			if p := problemFor(err); p.Status < 400 || p.Status >= 500 {
				t.Fatalf("%s(%q): status %d (%v); want a 4xx", name, body, p.Status, err)
			}
			return false
		}
		var open OpenLaneRequest
		if check("OpenLaneRequest", decodeBody(body, &open)) {
			if n := utf8.RuneCountInString(open.Reason); n == 0 || n > maxReason || open.Reason != strings.TrimSpace(open.Reason) {
				t.Fatalf("OpenLaneRequest(%q) accepted reason %q", body, open.Reason)
			}
		}
		var count CountRequest
		if check("CountRequest", decodeBody(body, &count)) {
			if count.Occupied == nil || *count.Occupied < 0 || count.Reason == "" {
				t.Fatalf("CountRequest(%q) accepted %+v", body, count)
			}
		}
		var v VehicleRequest
		if check("VehicleRequest", decodeBody(body, &v)) {
			if !storedPlate.MatchString(v.Plate) || !storedCountry.MatchString(v.Country) || utf8.RuneCountInString(v.Nickname) > maxNickname {
				t.Fatalf("VehicleRequest(%q) accepted %+v, which the schema refuses", body, v)
			}
		}
	})
}
