package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const examplePath = "../../deploy/garage-example.yaml"

func TestExample(t *testing.T) {
	f, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s) = %v; want no problems", examplePath, err)
	}
	if f.ID != "demo-garage" {
		t.Errorf("ID = %q; want demo-garage", f.ID)
	}
	if len(f.Levels) != 2 {
		t.Errorf("len(Levels) = %d; want 2", len(f.Levels))
	}
	if len(f.Zones) != 4 {
		t.Errorf("len(Zones) = %d; want 4", len(f.Zones))
	}
	spots, capacity := 0, 0
	for _, z := range f.Zones {
		spots += len(z.Spots)
		capacity += z.Capacity
	}
	if spots != 400 || capacity != 400 {
		t.Errorf("spots, capacity = %d, %d; want 400, 400", spots, capacity)
	}
	dirs := map[edge.Direction]int{}
	for _, l := range f.Lanes {
		dirs[l.Direction]++
	}
	if dirs[edge.Entry] != 2 || dirs[edge.Exit] != 2 {
		t.Errorf("lanes by direction = %v; want 2 entry, 2 exit", dirs)
	}
	if len(f.Tariffs) != 2 || len(f.Permits) != 2 || len(f.Reservations) != 1 || len(f.Blocklist) != 1 {
		t.Errorf("tariffs, permits, reservations, blocklist = %d, %d, %d, %d; want 2, 2, 1, 1",
			len(f.Tariffs), len(f.Permits), len(f.Reservations), len(f.Blocklist))
	}
	for _, r := range f.Tariffs {
		if r.Location == nil || r.Location.String() != "Europe/Amsterdam" {
			t.Errorf("tariff %s Location = %v; want Europe/Amsterdam (compiled)", r.ID, r.Location)
		}
	}
	// The short-term rate is usable as loaded: 2h30m is three started hours.
	r, ok := f.Rate("short-term")
	if !ok {
		t.Fatal(`Rate("short-term") not found`)
	}
	entry := time.Date(2026, 6, 12, 10, 0, 0, 0, r.Location)
	if fee, err := r.Fee(entry, entry.Add(150*time.Minute)); err != nil || fee != 900 {
		t.Errorf("Fee(2h30m) = %d, %v; want 900", fee, err)
	}
}

// TestBadGolden checks the full report for a file full of mistakes.
func TestBadGolden(t *testing.T) {
	got := problemsOf(t, "testdata/bad.yaml").Error() + "\n"
	golden := "testdata/bad.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Load(testdata/bad.yaml) problems differ from %s (run go test -update if the change is right):\ngot:\n%s\nwant:\n%s",
			golden, got, want)
	}
}

// wantComment marks, in testdata/*.yaml, the problems expected on a line.
var wantComment = regexp.MustCompile(`# want: (.*)$`)

// TestBadLines checks every problem's line against the "# want:" comments in
// testdata/bad.yaml, independently of the golden file: each problem must land
// on a line that wants it, and each want must be met.
func TestBadLines(t *testing.T) {
	const path = "testdata/bad.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wants := map[int][]string{}
	for i, line := range strings.Split(string(data), "\n") {
		if m := wantComment.FindStringSubmatch(line); m != nil {
			for w := range strings.SplitSeq(m[1], " | ") {
				wants[i+1] = append(wants[i+1], strings.TrimSpace(w))
			}
		}
	}
	met := map[string]bool{}
	kinds := map[string]bool{}
	for _, p := range problemsOf(t, path).List {
		text := p.Path + ": " + p.Message
		found := false
		for _, w := range wants[p.Line] {
			if strings.Contains(text, w) {
				met[strconv.Itoa(p.Line)+w] = true
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problem %q is on line %d, which wants %q", path, text, p.Line, wants[p.Line])
		}
		kinds[p.Message[:min(len(p.Message), 12)]] = true
	}
	for line, ws := range wants {
		for _, w := range ws {
			if !met[strconv.Itoa(line)+w] {
				t.Errorf("%s:%d: no problem matching %q", path, line, w)
			}
		}
	}
	if len(kinds) < 12 {
		t.Errorf("%s shows %d kinds of problem; want at least 12", path, len(kinds))
	}
}

// problemsOf loads path and returns the problems, failing if there are none.
func problemsOf(tb testing.TB, path string) *Problems {
	tb.Helper()
	_, err := Load(path)
	var ps *Problems
	if !errors.As(err, &ps) {
		tb.Fatalf("Load(%s) = %v; want *Problems", path, err)
	}
	return ps
}

// base is a small valid facility that the rule tests break one way each.
const base = `id: g1
levels:
  - id: L1
zones:
  - id: Z1
    level: L1
    capacity: 10
    held_back: 2
    rate: r1
    spot_ranges:
      - {prefix: S, from: 1, to: 4, width: 2}
  - id: Z2
    level: L1
    capacity: 2
    count_source: sensors
    spots:
      - {id: EV1, sensor: s1}
      - {id: EV2, sensor: s2}
lanes:
  - id: in1
    direction: entry
    zone: Z1
    arming_loop: a1
    safety_loop: b1
    barrier: bar1
    cameras: [c1]
    ticket_reader: t1
  - id: out1
    direction: exit
    zone: Z1
    arming_loop: a2
    safety_loop: b2
    barrier: bar2
devices:
  - {id: a1, kind: loop, protocol: inmem}
  - {id: b1, kind: loop, protocol: inmem}
  - {id: bar1, kind: barrier, protocol: inmem}
  - {id: c1, kind: camera, protocol: inmem}
  - {id: t1, kind: ticket_reader, protocol: inmem}
  - {id: a2, kind: loop, protocol: inmem}
  - {id: b2, kind: loop, protocol: inmem}
  - {id: bar2, kind: barrier, protocol: inmem}
  - {id: s1, kind: spot_sensor, protocol: inmem}
  - {id: s2, kind: spot_sensor, protocol: inmem}
tariffs:
  - id: r1
    increment: 15m
    tiers:
      - {per_increment: 100}
permits:
  - id: p1
    plates: [AB-12-CD]
    from: 2026-01-01
    until: 2027-01-01
reservations:
  - id: res1
    code: Q1
    zone: Z1
    from: 2026-06-01 09:00:00
    until: 2026-06-01 10:00:00
blocklist:
  - {plate: ZZ-99-ZZ, reason: test}
`

// edit returns base with old replaced by new, failing if old is not in it.
func edit(tb testing.TB, old, new string) []byte {
	tb.Helper()
	if !strings.Contains(base, old) {
		tb.Fatalf("base has no %q", old)
	}
	return []byte(strings.Replace(base, old, new, 1))
}

func TestBase(t *testing.T) {
	f, err := Parse("base.yaml", []byte(base))
	if err != nil {
		t.Fatalf("Parse(base) = %v; want no problems", err)
	}
	if got := len(f.Zones[0].Spots); got != 4 {
		t.Errorf("len(Zones[0].Spots) = %d; want 4", got)
	}
}

// TestRules breaks one rule at a time; each case lists every problem it
// expects as "path: part of the message", so cascades show up as failures.
func TestRules(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		// Decoding.
		{"unknown field", "    code: Q1\n", "    code: Q1\n    colour: red\n",
			[]string{"reservations[0].colour: unknown field; known fields are"}},
		{"misspelt field", "    held_back: 2\n", "    held_bak: 2\n",
			[]string{`zones[0].held_bak: unknown field; did you mean "held_back"?`}},
		{"wrong type", "capacity: 10", "capacity: ten",
			[]string{`zones[0].capacity: must be a whole number, got "ten"`}},
		{"fraction for a whole number", "capacity: 10", "capacity: 10.5",
			[]string{`zones[0].capacity: must be a whole number, got "10.5"`}},
		{"fraction for an amount", "per_increment: 100", "per_increment: 1.00",
			[]string{"tariffs[0].tiers[0].per_increment: must be a whole number, got \"1.00\" (amounts are in minor units"}},
		{"scalar for a list", "cameras: [c1]", "cameras: c1",
			[]string{`lanes[0].cameras: must be a list, got "c1"`}},
		{"list for text", "zone: Z1\n    arming_loop: a1", "zone: [Z1]\n    arming_loop: a1",
			[]string{"lanes[0].zone: must be text, got a list"}},
		{"scalar for a mapping", "levels:\n  - id: L1\n", "levels:\n  - L1\n",
			[]string{`levels[0]: must be a mapping of keys to values, got "L1"`}},
		{"empty list item", "blocklist:\n", "blocklist:\n  -\n", []string{"blocklist[0]: empty list item"}},
		{"key set twice", "    held_back: 2\n", "    held_back: 2\n    held_back: 3\n",
			[]string{"zones[0].held_back: set twice; first set on line 8"}},
		{"bad date", "from: 2026-01-01\n", "from: next monday\n",
			[]string{`permits[0].from: must be a date such as 2026-01-31`}},
		{"bad duration", "tiers:\n", "grace: 5 minutes\n    tiers:\n",
			[]string{`tariffs[0].grace: invalid duration "5 minutes"`}},
		{"bad policy duration", "blocklist:\n", "policies:\n  pass_timeout: 30\nblocklist:\n",
			[]string{`policies.pass_timeout: must be a duration such as 800ms, 30s or 5m, got "30"`}},
		{"mapping for a time of day", "    tiers:\n", "    bands:\n      - {start: {h: 22}, end: \"06:00\"}\n    tiers:\n",
			[]string{`tariffs[0].bands[0].start: must be a time of day such as "07:30", got a mapping`}},
		{"list for a date", "from: 2026-01-01\n", "from: [2026-01-01]\n",
			[]string{"permits[0].from: must be a date or a date and time, got a list"}},
		{"merge of a scalar", "  - id: res1\n", "  - <<: 3\n    id: res1\n",
			[]string{"reservations[0]: << must merge a mapping or a list of mappings"}},

		// Facility.
		{"id missing", "id: g1\n", "", []string{"id: required"}},
		{"id with a dot", "id: g1\n", "id: g.1\n", []string{`id: must be 1 to 63 lowercase`}},
		{"id with a wildcard", "id: g1\n", "id: g>\n", []string{`id: must be 1 to 63 lowercase`}},
		{"id in capitals", "id: g1\n", "id: G1\n", []string{`id: must be 1 to 63 lowercase`}},
		{"id too long", "id: g1\n", "id: " + strings.Repeat("a", 64) + "\n", []string{`id: must be 1 to 63 lowercase`}},
		{"id starting with a dash", "id: g1\n", "id: -g1\n", []string{`id: must be 1 to 63 lowercase`}},
		{"unknown time zone", "id: g1\n", "id: g1\ntimezone: Mars/Olympus\n", []string{`timezone: unknown time zone "Mars/Olympus"`}},
		{"local time zone", "id: g1\n", "id: g1\ntimezone: Local\n", []string{`timezone: "Local" depends on the host`}},
		{"bad currency", "id: g1\n", "id: g1\ncurrency: eur\n", []string{`currency: must be a three-letter ISO 4217 code`}},

		// Ids.
		{"id shared by two kinds", "  - id: p1\n", "  - id: in1\n",
			[]string{`permits[0].id: duplicate id "in1": already used by lanes[0] on line 20`}},
		{"spot id taken by a range", "{id: EV1, sensor: s1}", "{id: S01, sensor: s1}",
			[]string{`zones[1].spots[0].id: duplicate id "S01": already used by zones[0].spot_ranges[0] on line 11`}},
		{"overlapping ranges", "      - {prefix: S, from: 1, to: 4, width: 2}\n",
			"      - {prefix: S, from: 1, to: 4, width: 2}\n      - {prefix: S, from: 3, to: 4, width: 2}\n",
			[]string{`zones[0].spot_ranges[1]: duplicate id "S03": already used by zones[0].spot_ranges[0] on line 11, and 1 more`}},
		{"level id missing", "  - id: L1\n", "  - name: ground\n",
			[]string{"levels[0].id: required", `zones[0].level: level "L1" does not exist`, `zones[1].level: level "L1" does not exist`}},
		{"no levels", "levels:\n  - id: L1\n", "levels: []\n",
			[]string{"levels: at least one level", `zones[0].level: level "L1" does not exist`, `zones[1].level: level "L1" does not exist`}},

		// Zones.
		{"dangling level", "    level: L1\n    capacity: 10", "    level: L9\n    capacity: 10",
			[]string{`zones[0].level: level "L9" does not exist`}},
		{"no capacity", "capacity: 10", "capacity: 0", []string{"zones[0].capacity: must be at least 1, got 0"}},
		{"negative held back", "held_back: 2", "held_back: -1", []string{"zones[0].held_back: must not be negative"}},
		{"held back over capacity", "held_back: 2", "held_back: 11", []string{"zones[0].held_back: must not exceed capacity (10), got 11"}},
		{"dangling rate", "rate: r1", "rate: r9", []string{`zones[0].rate: tariff "r9" does not exist`}},
		{"no rate for lanes", "    rate: r1\n", "", []string{"zones[0].rate: required: lanes admit walk-ins"}},
		{"bad count source", "count_source: sensors", "count_source: cameras",
			[]string{`zones[1].count_source: must be lanes or sensors, got "cameras"`}},
		{"counted by lanes it has not", "    count_source: sensors\n", "",
			[]string{"zones[1].count_source: lanes: the zone has 0 entry and 0 exit lanes"}},
		{"more spots than capacity", "to: 4", "to: 11", []string{"zones[0].spot_ranges: 11 spots, more than the zone's capacity of 10"}},
		{"range backwards", "from: 1, to: 4", "from: 4, to: 1", []string{"zones[0].spot_ranges[0].to: must not be less than from (4), got 1"}},
		{"range negative", "from: 1, to: 4", "from: -1, to: 4", []string{"zones[0].spot_ranges[0].from: must not be negative"}},
		{"range too wide", "width: 2", "width: 12", []string{"zones[0].spot_ranges[0].width: must be 0 (no padding) to 9 digits"}},
		{"range too long", "to: 4", "to: 9223372036854775807",
			[]string{"zones[0].spot_ranges[0]: 1 to 9223372036854775807 is more spots than the 100000 a facility may have"}},
		{"sensor missing", "{id: EV2, sensor: s2}", "{id: EV2}",
			[]string{"zones[1].spots[1].sensor: required: the zone is counted by sensors"}},
		{"sensor of the wrong kind", "{id: EV2, sensor: s2}", "{id: EV2, sensor: c1}",
			[]string{`zones[1].spots[1].sensor: device "c1" is a camera, not a spot_sensor`}},
		{"sensor shared", "{id: EV2, sensor: s2}", "{id: EV2, sensor: s1}",
			[]string{`zones[1].spots[1].sensor: sensor "s1" is already the sensor of spot "EV1"`}},
		{"dangling sensor", "{id: EV2, sensor: s2}", "{id: EV2, sensor: s9}",
			[]string{`zones[1].spots[1].sensor: device "s9" does not exist`}},
		{"sensor zone with a range", "      - {id: EV2, sensor: s2}\n", "    spot_ranges:\n      - {prefix: EV, from: 2, to: 2}\n",
			[]string{"zones[1].spot_ranges[0]: spots from a range have no sensor"}},
		{"sensor zone without spots", "    spots:\n      - {id: EV1, sensor: s1}\n      - {id: EV2, sensor: s2}\n", "",
			[]string{"zones[1].count_source: sensors: the zone has no spots"}},
		{"spot id missing", "{id: EV2, sensor: s2}", "{sensor: s2}", []string{"zones[1].spots[1].id: required"}},

		// Lanes.
		{"bad direction", "direction: entry", "direction: inbound",
			[]string{`lanes[0].direction: must be entry or exit, got "inbound"`, "lanes: at least one entry lane is required", "zones[0].count_source: lanes: the zone has 0 entry and 1 exit lanes"}},
		{"no entry lane", "direction: entry", "direction: exit",
			[]string{"lanes: at least one entry lane is required", "zones[0].count_source: lanes: the zone has 0 entry and 2 exit lanes"}},
		{"dangling lane zone", "    zone: Z1\n    arming_loop: a2", "    zone: Z9\n    arming_loop: a2",
			[]string{`lanes[1].zone: zone "Z9" does not exist`, "zones[0].count_source: lanes: the zone has 1 entry and 0 exit lanes"}},
		{"arming loop missing", "    arming_loop: a2\n", "", []string{"lanes[1].arming_loop: required: the id of a loop device"}},
		{"dangling barrier", "barrier: bar2", "barrier: bar9", []string{`lanes[1].barrier: device "bar9" does not exist`}},
		{"barrier of the wrong kind", "barrier: bar2", "barrier: c1", []string{`lanes[1].barrier: device "c1" is a camera, not a barrier`}},
		{"loop of the wrong kind", "safety_loop: b2", "safety_loop: bar2",
			[]string{`lanes[1].safety_loop: device "bar2" is a barrier, not a loop`}},
		{"camera of the wrong kind", "cameras: [c1]", "cameras: [c1, t1]", []string{`lanes[0].cameras[1]: device "t1" is a ticket_reader, not a camera`}},
		{"ticket reader of the wrong kind", "ticket_reader: t1", "ticket_reader: c1",
			[]string{`lanes[0].ticket_reader: device "c1" is a camera, not a ticket_reader`}},
		{"loop shared by two lanes", "arming_loop: a2", "arming_loop: a1",
			[]string{`lanes[1].arming_loop: device "a1" is already the arming_loop of lanes[0] (in1)`}},
		{"barrier shared by two lanes", "barrier: bar2", "barrier: bar1",
			[]string{`lanes[1].barrier: device "bar1" is already the barrier of lanes[0] (in1)`}},
		{"safety loop is the arming loop", "safety_loop: b2", "safety_loop: a2",
			[]string{"lanes[1].safety_loop: must be a different loop from arming_loop"}},
		{"bad fail mode", "    barrier: bar2\n", "    barrier: bar2\n    fail_mode: open\n",
			[]string{`lanes[1].fail_mode: must be fail_secure or fail_open, got "open"`}},

		// Devices.
		{"unknown device kind", "{id: c1, kind: camera", "{id: c1, kind: anpr",
			[]string{`devices[3].kind: must be one of barrier, loop, camera, ticket_reader, spot_sensor, card_terminal, got "anpr"`}},
		{"device kind missing", "{id: c1, kind: camera, protocol: inmem}", "{id: c1, protocol: inmem}",
			[]string{"devices[3].kind: required: one of"}},
		{"protocol missing", "{id: c1, kind: camera, protocol: inmem}", "{id: c1, kind: camera}",
			[]string{"devices[3].protocol: required"}},
		{"device id missing", "  - {id: s2, kind: spot_sensor, protocol: inmem}\n", "  - {id: s2, kind: spot_sensor, protocol: inmem}\n  - {kind: loop, protocol: inmem}\n",
			[]string{"devices[10].id: required"}},

		// Tariffs.
		{"bad tariff", "increment: 15m", "increment: 7m",
			[]string{"tariffs[0].increment: must be whole seconds and divide 24h evenly, got 7m"}},
		{"tariff in another currency", "    increment: 15m\n", "    increment: 15m\n    currency: USD\n",
			[]string{"tariffs[0].currency: must be the facility currency EUR, got USD"}},
		{"bad band", "    tiers:\n", "    bands:\n      - {start: \"22:00\", end: \"22:00\"}\n    tiers:\n",
			[]string{"tariffs[0].bands[0].end: must differ from start 22:00"}},

		// Policies.
		{"bad anti-passback", "blocklist:\n", "policies:\n  anti_passback: strict\nblocklist:\n",
			[]string{`policies.anti_passback: must be none, soft or hard, got "strict"`}},
		{"confidence above 1", "blocklist:\n", "policies:\n  plate_confidence: 60\nblocklist:\n",
			[]string{"policies.plate_confidence: must be between 0 and 1, got 60"}},
		{"confidence not a number", "blocklist:\n", "policies:\n  plate_confidence: .nan\nblocklist:\n",
			[]string{"policies.plate_confidence: must be between 0 and 1, got NaN"}},
		{"no barrier timeout", "blocklist:\n", "policies:\n  barrier_timeout: 0s\nblocklist:\n",
			[]string{"policies.barrier_timeout: must be more than 0s"}},
		{"negative duration", "blocklist:\n", "policies:\n  credential_window: -1s\nblocklist:\n",
			[]string{"policies.credential_window: must not be negative, got -1s"}},
		{"negative retries", "blocklist:\n", "policies:\n  barrier_retries: -1\nblocklist:\n",
			[]string{"policies.barrier_retries: must not be negative, got -1"}},

		// Permits, reservations, blocklist.
		{"permit ends before it starts", "until: 2027-01-01", "until: 2025-01-01",
			[]string{"permits[0].until: must be after from (2026-01-01T00:00:00Z), got 2025-01-01T00:00:00Z"}},
		{"permit without from", "    from: 2026-01-01\n", "", []string{"permits[0].from: required"}},
		{"permit without until", "    until: 2027-01-01\n", "", []string{"permits[0].until: required"}},
		{"permit without credentials", "    plates: [AB-12-CD]\n", "", []string{"permits[0]: needs at least one plate or card"}},
		{"permit with an empty card", "    plates: [AB-12-CD]\n", "    cards: [\" \"]\n", []string{"permits[0].cards[0]: must not be empty"}},
		{"unreadable plate", "plates: [AB-12-CD]", "plates: [AB-12-CD, \"·\"]", []string{`permits[0].plates[1]: "·" has no letters or digits`}},
		{"permit in a dangling zone", "    plates: [AB-12-CD]\n", "    plates: [AB-12-CD]\n    zones: [Z1, Z7]\n",
			[]string{`permits[0].zones[1]: zone "Z7" does not exist`}},
		{"negative max inside", "    plates: [AB-12-CD]\n", "    plates: [AB-12-CD]\n    max_inside: -2\n",
			[]string{"permits[0].max_inside: must not be negative, got -2"}},
		{"reservation without credentials", "    code: Q1\n", "", []string{"reservations[0]: needs a plate or a code"}},
		{"reservation without zone", "    zone: Z1\n    from", "    from", []string{"reservations[0].zone: required"}},
		{"reservation in a dangling zone", "    zone: Z1\n    from", "    zone: Z0\n    from", []string{`reservations[0].zone: zone "Z0" does not exist`}},
		{"reservation ends when it starts", "until: 2026-06-01 10:00:00", "until: 2026-06-01 09:00:00",
			[]string{"reservations[0].until: must be after from"}},
		{"negative reservation grace", "    code: Q1\n", "    code: Q1\n    grace: -5m\n", []string{"reservations[0].grace: must not be negative"}},
		{"empty block entry", "{plate: ZZ-99-ZZ, reason: test}", "{reason: test}", []string{"blocklist[0]: needs a plate or a card"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", edit(t, tt.old, tt.new))
			var ps *Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v; want *Problems with %q", err, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(ps.Error(), w) {
					t.Errorf("Parse problems = \n%v\nwant one containing %q", ps, w)
				}
			}
			if len(ps.List) != len(tt.want) {
				t.Errorf("Parse found %d problems:\n%v\nwant %d", len(ps.List), ps, len(tt.want))
			}
			for _, p := range ps.List {
				if p.Line < 1 {
					t.Errorf("problem %q has line %d; want a line", p, p.Line)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	f, err := Parse("base.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"timezone", f.Timezone, "UTC"},
		{"currency", f.Currency, "EUR"},
		{"zone count_source", f.Zones[0].CountSource, edge.CountLanes},
		{"lane fail_mode", f.Lanes[0].FailMode, edge.FailSecure},
		{"anti_passback", f.Policies.AntiPassback, edge.PassbackSoft},
		{"plate_confidence", f.Policies.PlateConfidence, 0.6},
		{"fuzzy_plates", f.Policies.FuzzyPlates, true},
		{"plate_vote_window", f.Policies.PlateVoteWindow, edge.Duration(800 * time.Millisecond)},
		{"credential_window", f.Policies.CredentialWindow, edge.Duration(time.Minute)},
		{"barrier_timeout", f.Policies.BarrierTimeout, edge.Duration(3 * time.Second)},
		{"barrier_retries", f.Policies.BarrierRetries, 2},
		{"pass_timeout", f.Policies.PassTimeout, edge.Duration(30 * time.Second)},
		{"stuck_loop_after", f.Policies.StuckLoopAfter, edge.Duration(5 * time.Minute)},
		{"exit_grace", f.Policies.ExitGrace, edge.Duration(0)},
		{"permit max_inside", f.Permits[0].MaxInside, 1},
		{"tariff currency", f.Tariffs[0].Currency, "EUR"},
		{"tariff timezone", f.Tariffs[0].Timezone, "UTC"},
		{"spot ids", f.Zones[0].Spots[0].ID + ".." + f.Zones[0].Spots[3].ID, "S01..S04"},
		{"spot ranges kept", len(f.Zones[0].SpotRanges), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

// TestExplicitZeroes checks that a policy set to its zero value is kept, not
// replaced by the default.
func TestExplicitZeroes(t *testing.T) {
	data := edit(t, "blocklist:\n", `policies:
  plate_confidence: 0
  fuzzy_plates: false
  barrier_retries: 0
  plate_vote_window: 0s
  anti_passback: none
blocklist:
`)
	f, err := Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultPolicies
	want.PlateConfidence, want.FuzzyPlates, want.BarrierRetries, want.PlateVoteWindow, want.AntiPassback = 0, false, 0, 0, edge.PassbackNone
	if f.Policies != want {
		t.Errorf("Policies = %+v; want %+v", f.Policies, want)
	}
}

// TestLocalTimes checks that times without an offset are read on the
// facility's clock and times with one are kept.
func TestLocalTimes(t *testing.T) {
	data := edit(t, "id: g1\n", "id: g1\ntimezone: Europe/Amsterdam\n")
	data = []byte(strings.Replace(string(data), "until: 2027-01-01", "until: 2027-01-01T00:00:00Z", 1))
	f, err := Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want time.Time
	}{
		{"date", f.Permits[0].From, time.Date(2026, 1, 1, 0, 0, 0, 0, ams)},
		{"offset", f.Permits[0].Until, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"date and time", f.Reservations[0].From, time.Date(2026, 6, 1, 9, 0, 0, 0, ams)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.got.Equal(tt.want) {
				t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if got := f.Tariffs[0].Timezone; got != "Europe/Amsterdam" {
		t.Errorf("tariff Timezone = %q; want the facility's Europe/Amsterdam", got)
	}
}

// TestAnchors checks that anchors and merge keys work and that an unknown key
// inside a merged mapping is still caught.
func TestAnchors(t *testing.T) {
	data := edit(t, "  - {id: a2, kind: loop, protocol: inmem}\n", "  - &loop {id: a2, kind: loop, protocol: inmem}\n")
	data = []byte(strings.Replace(string(data), "  - {id: b2, kind: loop, protocol: inmem}\n", "  - {<<: *loop, id: b2}\n", 1))
	f, err := Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Devices[6]; d.ID != "b2" || d.Kind != edge.KindLoop || d.Protocol != "inmem" {
		t.Errorf("merged device = %+v; want b2, loop, inmem", d)
	}

	data = []byte(strings.Replace(string(data), "&loop {id: a2,", "&loop {id: a2, colour: red,", 1))
	_, err = Parse("f.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "f.yaml:40: devices[5].colour: unknown field") {
		t.Errorf("Parse = %v; want devices[5].colour: unknown field on line 40", err)
	}
}

// TestAliasMisuse checks that an anchor used wrongly in one place is
// reported there and still works where it is used rightly.
func TestAliasMisuse(t *testing.T) {
	data := edit(t, "    plates: [AB-12-CD]\n", "    plates: &pl [AB-12-CD]\n")
	data = []byte(strings.Replace(string(data), "    until: 2027-01-01\n",
		"    until: 2027-01-01\n  - {id: p2, plates: [*pl, *pl], from: 2026-01-01, until: 2027-01-01}\n", 1))
	_, err := Parse("f.yaml", data)
	want := "f.yaml:55: permits[1].plates[0]: must be text, got a list"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v; want %s", err, want)
	}
}

// TestAliasBomb checks that a billion-laughs file is answered with problems,
// not by expanding it.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("id: x\nname: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for c := 'b'; c <= 'z'; c++ {
		fmt.Fprintf(&b, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c-1, c-1, c-1, c-1, c-1, c-1, c-1, c-1, c-1)
	}
	b.WriteString("levels: [*z, *z]\npermits:\n  - {id: p, plates: *z, cards: *z}\n")
	_, err := Parse("f.yaml", []byte(b.String()))
	if !strings.Contains(fmt.Sprint(err), "f.yaml:2: name: must be text, got a list") {
		t.Errorf("Parse(billion laughs) = %v; want problems", err)
	}
}

func TestFileProblems(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "f.yaml:1: the file is empty"},
		{"comments only", "# nothing yet\n", "f.yaml:1: the file is empty"},
		{"null", "~\n", "f.yaml:1: the file is empty"},
		{"syntax", "id: g1\nlevels: [\n", "f.yaml:2: invalid YAML: did not find expected node content"},
		{"tab", "id: g1\n\tname: x\n", "f.yaml:2: invalid YAML: found a tab character that violates indentation"},
		{"two documents", base + "---\nid: g2\n", `f.yaml:63: only one YAML document is allowed; remove the second "---"`},
		{"not a mapping", "- id: g1\n", `f.yaml:1: must be a mapping of keys to values, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.data))
			if f != nil || err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%q) = %v, %v; want nil, %q", tt.data, f, err, tt.want)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{"g.yaml", 7, "lanes[2].barrier", "device \"x\" does not exist"}, `g.yaml:7: lanes[2].barrier: device "x" does not exist`},
		{Problem{"g.yaml", 1, "", "the file is empty"}, "g.yaml:1: the file is empty"},
		{Problem{"g.yaml", 0, "id", "required"}, "g.yaml: id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("%#v.String() = %q; want %q", tt.p, got, tt.want)
			}
		})
	}
}

func TestProblemsAreInvalid(t *testing.T) {
	_, err := Parse("f.yaml", edit(t, "capacity: 10", "capacity: 0"))
	if code := edge.ErrorCode(err); code != edge.EINVALID {
		t.Errorf("ErrorCode(%v) = %q; want %q", err, code, edge.EINVALID)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"PORT": "5020", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct{ in, want string }{
		{"address: 127.0.0.1:${PORT}", "address: 127.0.0.1:5020"},
		{"address: ${HOST:-127.0.0.1}:${PORT:-502}", "address: 127.0.0.1:5020"},
		{"path: ${EMPTY:-/dev/ttyS0}", "path: /dev/ttyS0"},
		{"path: ${MISSING}", "path: "},
		{"price: $5 and ${ not a ref", "price: $5 and ${ not a ref"},
	}
	for _, tt := range tests {
		if got := string(Expand([]byte(tt.in), getenv)); got != tt.want {
			t.Errorf("Expand(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
