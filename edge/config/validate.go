package config

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/plate"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// facilityID is what a facility id may look like: it becomes a token of NATS
// subjects, so no dots, spaces or wildcards.
var facilityID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// deviceKinds are the known device kinds, in the order messages list them.
var deviceKinds = []edge.DeviceKind{
	edge.KindBarrier, edge.KindLoop, edge.KindCamera, edge.KindTicketReader, edge.KindSpotSensor, edge.KindCardTerminal,
}

// checker runs the semantic checks on a decoded facility.
type checker struct {
	*collector
	f         *edge.Facility
	spotPaths [][]string // see expandSpots
	// Id sets that references are checked against; nil when the list did not
	// decode, so that one broken list does not make every reference to it
	// dangle.
	levels, zones, tariffs map[string]bool
	devices                map[string]int // id → index in Devices
	// entries and exits count the lanes into and out of each zone; lanesOK
	// says whether the lanes decoded well enough to trust the counts.
	entries, exits map[string]int
	lanesOK        bool
}

// check records every semantic problem with f.
func check(c *collector, f *edge.Facility, spotPaths [][]string) {
	k := &checker{collector: c, f: f, spotPaths: spotPaths}
	k.sets()
	k.facility()
	k.uniqueIDs()
	k.checkLevels()
	k.checkZones()
	k.checkLanes()
	k.checkDevices()
	k.checkTariffs()
	k.checkPolicies()
	k.checkPermits()
	k.checkReservations()
	k.checkBlocklist()
}

// sets builds the id sets and lane counts the checks refer to.
func (k *checker) sets() {
	f := k.f
	k.levels = k.idSet("levels", len(f.Levels), func(i int) string { return f.Levels[i].ID })
	k.zones = k.idSet("zones", len(f.Zones), func(i int) string { return f.Zones[i].ID })
	k.tariffs = k.idSet("tariffs", len(f.Tariffs), func(i int) string { return f.Tariffs[i].ID })
	if k.idSet("devices", len(f.Devices), func(i int) string { return f.Devices[i].ID }) != nil {
		k.devices = map[string]int{}
		for i := range f.Devices {
			if _, dup := k.devices[f.Devices[i].ID]; !dup {
				k.devices[f.Devices[i].ID] = i
			}
		}
	}
	k.entries, k.exits = map[string]int{}, map[string]int{}
	k.lanesOK = !k.tainted("lanes")
	for i, l := range f.Lanes {
		p := elem("lanes", i)
		if k.tainted(p+".direction") || k.tainted(p+".zone") {
			k.lanesOK = false
		}
		switch l.Direction {
		case edge.Entry:
			k.entries[l.Zone]++
		case edge.Exit:
			k.exits[l.Zone]++
		}
	}
}

// idSet returns the ids of the list at path, or nil if an id may be missing
// because the list, one of its items or one of its ids did not decode.
func (k *checker) idSet(path string, n int, id func(int) string) map[string]bool {
	if k.tainted(path) {
		return nil
	}
	set := make(map[string]bool, n)
	for i := range n {
		if k.tainted(elem(path, i) + ".id") {
			return nil
		}
		set[id(i)] = true
	}
	return set
}

// exists reports whether id is in set, or set is untrusted (nil).
func exists(set map[string]bool, id string) bool {
	return set == nil || set[id]
}

// facility checks the top-level keys.
func (k *checker) facility() {
	f := k.f
	switch {
	case f.ID == "":
		k.add("id", `required: a short name such as "demo-garage"; it becomes part of NATS subjects`)
	case !facilityID.MatchString(f.ID):
		k.add("id", fmt.Sprintf("must be 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit "+
			"(it becomes part of NATS subjects), got %q", f.ID))
	}
	if _, err := loadLocation(f.Timezone); err != nil {
		k.add("timezone", err.Error())
	}
	if !isCurrency(f.Currency) {
		k.add("currency", fmt.Sprintf("must be a three-letter ISO 4217 code such as EUR, got %q", f.Currency))
	}
}

// uniqueIDs checks that no id is used twice across levels, zones, spots,
// lanes, devices, tariffs, permits and reservations: ids name things in
// events, logs and subjects, where the kind is not always alongside.
func (k *checker) uniqueIDs() {
	type use struct {
		id, path, owner string // owner is what to call the first use in messages
		line            int
	}
	f := k.f
	n := len(f.Levels) + len(f.Zones) + len(f.Lanes) + len(f.Devices) + len(f.Tariffs) + len(f.Permits) + len(f.Reservations)
	for i := range f.Zones {
		n += len(f.Zones[i].Spots)
	}
	uses := make([]use, 0, n)
	add := func(id, path, owner string) {
		if id != "" {
			uses = append(uses, use{id, path, owner, k.line(path)})
		}
	}
	list := func(path string, n int, id func(int) string) {
		for i := range n {
			p := elem(path, i)
			add(id(i), p+".id", p)
		}
	}
	list("levels", len(f.Levels), func(i int) string { return f.Levels[i].ID })
	list("zones", len(f.Zones), func(i int) string { return f.Zones[i].ID })
	for i := range f.Zones {
		for j, s := range f.Zones[i].Spots {
			p := k.spotPaths[i][j]
			if isRange(p) {
				add(s.ID, p, p)
			} else {
				add(s.ID, p+".id", p)
			}
		}
	}
	list("lanes", len(f.Lanes), func(i int) string { return f.Lanes[i].ID })
	list("devices", len(f.Devices), func(i int) string { return f.Devices[i].ID })
	list("tariffs", len(f.Tariffs), func(i int) string { return f.Tariffs[i].ID })
	list("permits", len(f.Permits), func(i int) string { return f.Permits[i].ID })
	list("reservations", len(f.Reservations), func(i int) string { return f.Reservations[i].ID })
	slices.SortStableFunc(uses, func(a, b use) int { return cmp.Compare(a.line, b.line) })

	// A range that overlaps another repeats many ids; report it once.
	type rangeDup struct {
		msg  string
		more int
	}
	ranges := map[string]*rangeDup{}
	var order []string
	first := map[string]use{}
	for _, u := range uses {
		f, dup := first[u.id]
		if !dup {
			first[u.id] = u
			continue
		}
		msg := fmt.Sprintf("duplicate id %q: already used by %s on line %d", u.id, f.owner, f.line)
		if !isRange(u.path) {
			k.add(u.path, msg)
			continue
		}
		if r, ok := ranges[u.path]; ok {
			r.more++
			continue
		}
		ranges[u.path] = &rangeDup{msg: msg}
		order = append(order, u.path)
	}
	for _, p := range order {
		r := ranges[p]
		if r.more > 0 {
			r.msg += fmt.Sprintf(", and %d more ids of this range are taken", r.more)
		}
		k.add(p, r.msg)
	}
}

// isRange reports whether a spot path names the range the spot came from.
func isRange(spotPath string) bool {
	return strings.Contains(spotPath, ".spot_ranges[")
}

// checkLevels checks the levels.
func (k *checker) checkLevels() {
	if len(k.f.Levels) == 0 {
		k.add("levels", "at least one level is required")
	}
	for i, l := range k.f.Levels {
		if l.ID == "" {
			k.add(elem("levels", i)+".id", "required")
		}
	}
}

// checkZones checks the zones and their spots.
func (k *checker) checkZones() {
	if len(k.f.Zones) == 0 {
		k.add("zones", "at least one zone is required")
	}
	sensorOf := map[string]string{} // sensor device → spot id
	for i := range k.f.Zones {
		z := &k.f.Zones[i]
		p := elem("zones", i)
		if z.ID == "" {
			k.add(p+".id", "required")
		}
		switch {
		case z.Level == "":
			k.add(p+".level", "required: the id of a level")
		case !exists(k.levels, z.Level):
			k.add(p+".level", fmt.Sprintf("level %q does not exist", z.Level))
		}
		if z.Capacity <= 0 {
			k.add(p+".capacity", fmt.Sprintf("must be at least 1, got %d", z.Capacity))
		}
		switch {
		case z.HeldBack < 0:
			k.add(p+".held_back", fmt.Sprintf("must not be negative, got %d", z.HeldBack))
		case z.Capacity > 0 && z.HeldBack > z.Capacity && !k.tainted(p+".capacity"):
			k.add(p+".held_back", fmt.Sprintf("must not exceed capacity (%d), got %d", z.Capacity, z.HeldBack))
		}

		entries, exits := k.entries[z.ID], k.exits[z.ID]
		switch {
		case z.Rate != "":
			if !exists(k.tariffs, z.Rate) {
				k.add(p+".rate", fmt.Sprintf("tariff %q does not exist", z.Rate))
			}
		case entries+exits > 0 && z.ID != "":
			k.add(p+".rate", "required: lanes admit walk-ins to this zone, so it needs the id of a tariff")
		}

		switch z.CountSource {
		case edge.CountLanes:
			if k.lanesOK && z.ID != "" && (entries == 0 || exits == 0) {
				k.add(p+".count_source", fmt.Sprintf("lanes: the zone has %d entry and %d exit lanes, so its count "+
					"would never be right; add lanes or use count_source: sensors", entries, exits))
			}
		case edge.CountSensors:
			if len(z.Spots) == 0 {
				k.add(p+".count_source", "sensors: the zone has no spots; list its spots with their sensors under spots")
			}
		default:
			k.add(p+".count_source", fmt.Sprintf("must be lanes or sensors, got %q", z.CountSource))
		}

		for j, s := range z.Spots {
			sp := k.spotPaths[i][j]
			if isRange(sp) {
				if z.CountSource == edge.CountSensors {
					k.add(sp, "spots from a range have no sensor, but the zone is counted by sensors; "+
						"list these spots under spots, each with its sensor")
				}
				continue
			}
			if s.ID == "" {
				k.add(sp+".id", "required")
			}
			switch {
			case s.Sensor == "":
				if z.CountSource == edge.CountSensors {
					k.add(sp+".sensor", "required: the zone is counted by sensors")
				}
			case sensorOf[s.Sensor] != "":
				k.add(sp+".sensor", fmt.Sprintf("sensor %q is already the sensor of spot %q", s.Sensor, sensorOf[s.Sensor]))
			default:
				sensorOf[s.Sensor] = cmp.Or(s.ID, "?")
				k.device(sp+".sensor", s.Sensor, edge.KindSpotSensor, false)
			}
		}
		if z.Capacity > 0 && len(z.Spots) > z.Capacity && !k.tainted(p+".capacity") {
			where := p + ".spots"
			if len(z.SpotRanges) > 0 {
				where = p + ".spot_ranges"
			}
			k.add(where, fmt.Sprintf("%d spots, more than the zone's capacity of %d", len(z.Spots), z.Capacity))
		}
	}
}

// laneRole is a device one lane has to itself.
type laneRole struct {
	lane int
	role string
}

// checkLanes checks the lanes and the devices they name.
func (k *checker) checkLanes() {
	f := k.f
	if k.lanesOK {
		var entries, exits int
		for _, l := range f.Lanes {
			switch l.Direction {
			case edge.Entry:
				entries++
			case edge.Exit:
				exits++
			}
		}
		if entries == 0 {
			k.add("lanes", "at least one entry lane is required")
		}
		if exits == 0 {
			k.add("lanes", "at least one exit lane is required")
		}
	}
	owner := map[string]laneRole{} // loop or barrier → the lane that has it
	for i, l := range f.Lanes {
		p := elem("lanes", i)
		if l.ID == "" {
			k.add(p+".id", "required")
		}
		switch l.Direction {
		case edge.Entry, edge.Exit:
		case "":
			k.add(p+".direction", "required: entry or exit")
		default:
			k.add(p+".direction", fmt.Sprintf("must be entry or exit, got %q", l.Direction))
		}
		switch {
		case l.Zone == "":
			k.add(p+".zone", "required: the id of the zone the lane leads into or out of")
		case !exists(k.zones, l.Zone):
			k.add(p+".zone", fmt.Sprintf("zone %q does not exist", l.Zone))
		}
		k.device(p+".arming_loop", l.ArmingLoop, edge.KindLoop, true)
		k.device(p+".safety_loop", l.SafetyLoop, edge.KindLoop, true)
		if l.SafetyLoop != "" && l.SafetyLoop == l.ArmingLoop {
			k.add(p+".safety_loop", "must be a different loop from arming_loop")
		}
		k.device(p+".barrier", l.Barrier, edge.KindBarrier, true)
		for j, cam := range l.Cameras {
			k.device(elem(p+".cameras", j), cam, edge.KindCamera, true)
		}
		k.device(p+".ticket_reader", l.TicketReader, edge.KindTicketReader, false)
		k.device(p+".card_terminal", l.CardTerminal, edge.KindCardTerminal, false)
		if l.CardTerminal != "" && l.Direction == edge.Entry {
			k.add(p+".card_terminal", "only an exit lane's kiosk takes payments")
		}
		switch l.FailMode {
		case edge.FailSecure, edge.FailOpen:
		default:
			k.add(p+".fail_mode", fmt.Sprintf("must be fail_secure or fail_open, got %q", l.FailMode))
		}

		for _, r := range []struct{ role, id string }{
			{"arming_loop", l.ArmingLoop}, {"safety_loop", l.SafetyLoop}, {"barrier", l.Barrier},
		} {
			if r.id == "" {
				continue
			}
			o, taken := owner[r.id]
			switch {
			case !taken:
				owner[r.id] = laneRole{i, r.role}
			case o.lane != i:
				k.add(p+"."+r.role, fmt.Sprintf("device %q is already the %s of lanes[%d] (%s); a loop or barrier belongs to one lane",
					r.id, o.role, o.lane, cmp.Or(f.Lanes[o.lane].ID, "no id")))
			}
		}
	}
}

// device checks a reference at path to a device of the given kind.
func (k *checker) device(path, id string, kind edge.DeviceKind, required bool) {
	if id == "" {
		if required {
			k.add(path, fmt.Sprintf("required: the id of a %s device", kind))
		}
		return
	}
	if k.devices == nil {
		return
	}
	i, ok := k.devices[id]
	if !ok {
		k.add(path, fmt.Sprintf("device %q does not exist", id))
		return
	}
	if d := &k.f.Devices[i]; d.Kind != kind && slices.Contains(deviceKinds, d.Kind) {
		k.add(path, fmt.Sprintf("device %q is a %s, not a %s", id, d.Kind, kind))
	}
}

// checkDevices checks the devices.
func (k *checker) checkDevices() {
	kinds := make([]string, len(deviceKinds))
	for i, d := range deviceKinds {
		kinds[i] = string(d)
	}
	known := strings.Join(kinds, ", ")
	for i, d := range k.f.Devices {
		p := elem("devices", i)
		if d.ID == "" {
			k.add(p+".id", "required")
		}
		switch {
		case d.Kind == "":
			k.add(p+".kind", "required: one of "+known)
		case !slices.Contains(deviceKinds, d.Kind):
			k.add(p+".kind", fmt.Sprintf("must be one of %s, got %q", known, d.Kind))
		}
		if strings.TrimSpace(d.Protocol) == "" {
			k.add(p+".protocol", `required: the adapter, such as "inmem" or "modbus_tcp"`)
		}
	}
}

// checkTariffs runs each tariff's own validation and checks its currency.
func (k *checker) checkTariffs() {
	for i := range k.f.Tariffs {
		r := &k.f.Tariffs[i]
		p := elem("tariffs", i)
		for _, err := range flatten(r.Validate()) {
			if fe, ok := errors.AsType[*tariff.FieldError](err); ok {
				if fe.Field == "currency" && !k.present(p+".currency") {
					continue // inherited from the facility, and reported there
				}
				k.add(join(p, fe.Field), fe.Problem)
			} else {
				k.add(p, err.Error())
			}
		}
		if isCurrency(r.Currency) && isCurrency(k.f.Currency) && r.Currency != k.f.Currency {
			k.add(p+".currency", fmt.Sprintf("must be the facility currency %s, got %s", k.f.Currency, r.Currency))
		}
	}
}

// flatten splits errors joined with errors.Join.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// checkPolicies checks the policies.
func (k *checker) checkPolicies() {
	p := &k.f.Policies
	switch p.AntiPassback {
	case edge.PassbackNone, edge.PassbackSoft, edge.PassbackHard:
	default:
		k.add("policies.anti_passback", fmt.Sprintf("must be none, soft or hard, got %q", p.AntiPassback))
	}
	if !(p.PlateConfidence >= 0 && p.PlateConfidence <= 1) {
		k.add("policies.plate_confidence", fmt.Sprintf("must be between 0 and 1, got %v", p.PlateConfidence))
	}
	for _, d := range []struct {
		key string
		d   edge.Duration
	}{
		{"plate_vote_window", p.PlateVoteWindow},
		{"credential_window", p.CredentialWindow},
		{"barrier_timeout", p.BarrierTimeout},
		{"pass_timeout", p.PassTimeout},
		{"stuck_loop_after", p.StuckLoopAfter},
		{"exit_grace", p.ExitGrace},
	} {
		if d.d < 0 {
			k.add("policies."+d.key, fmt.Sprintf("must not be negative, got %v", time.Duration(d.d)))
		}
	}
	if p.BarrierTimeout == 0 {
		k.add("policies.barrier_timeout", "must be more than 0s: it is how long the barrier has to answer")
	}
	if p.BarrierRetries < 0 {
		k.add("policies.barrier_retries", fmt.Sprintf("must not be negative, got %d", p.BarrierRetries))
	}
	if pay := &k.f.Payments; pay.OfflineFloorLimit < 0 {
		k.add("payments.offline_floor_limit", fmt.Sprintf("must not be negative, got %d", pay.OfflineFloorLimit))
	}
	if pay := &k.f.Payments; pay.CaptureEvery < 0 {
		k.add("payments.capture_every", fmt.Sprintf("must not be negative, got %v", time.Duration(pay.CaptureEvery)))
	}
}

// checkPermits checks the permits.
func (k *checker) checkPermits() {
	for i, pm := range k.f.Permits {
		p := elem("permits", i)
		if pm.ID == "" {
			k.add(p+".id", "required")
		}
		if len(pm.Plates)+len(pm.Cards) == 0 {
			k.add(p, "needs at least one plate or card")
		}
		k.plates(p+".plates", pm.Plates)
		for j, c := range pm.Cards {
			if strings.TrimSpace(c) == "" {
				k.add(elem(p+".cards", j), "must not be empty")
			}
		}
		for j, z := range pm.Zones {
			if !exists(k.zones, z) {
				k.add(elem(p+".zones", j), fmt.Sprintf("zone %q does not exist", z))
			}
		}
		k.window(p, pm.From, pm.Until)
		if pm.MaxInside < 0 {
			k.add(p+".max_inside", fmt.Sprintf("must not be negative, got %d", pm.MaxInside))
		}
	}
}

// checkReservations checks the reservations.
func (k *checker) checkReservations() {
	for i, r := range k.f.Reservations {
		p := elem("reservations", i)
		if r.ID == "" {
			k.add(p+".id", "required")
		}
		if r.Plate == "" && r.Code == "" {
			k.add(p, "needs a plate or a code")
		}
		if r.Plate != "" {
			k.plate(p+".plate", r.Plate)
		}
		switch {
		case r.Zone == "":
			k.add(p+".zone", "required: the id of the zone the space is booked in")
		case !exists(k.zones, r.Zone):
			k.add(p+".zone", fmt.Sprintf("zone %q does not exist", r.Zone))
		}
		k.window(p, r.From, r.Until)
		if r.Grace < 0 {
			k.add(p+".grace", fmt.Sprintf("must not be negative, got %v", time.Duration(r.Grace)))
		}
	}
}

// checkBlocklist checks the blocklist.
func (k *checker) checkBlocklist() {
	for i, b := range k.f.Blocklist {
		p := elem("blocklist", i)
		if b.Plate == "" && b.Card == "" {
			k.add(p, "needs a plate or a card")
		}
		if b.Plate != "" {
			k.plate(p+".plate", b.Plate)
		}
	}
}

// plates checks a list of plates.
func (k *checker) plates(path string, plates []string) {
	for j, pl := range plates {
		k.plate(elem(path, j), pl)
	}
}

// plate checks that a plate has something a camera could read.
func (k *checker) plate(path, pl string) {
	if plate.Normalize(pl) == "" {
		k.add(path, fmt.Sprintf("%q has no letters or digits", pl))
	}
}

// window checks a from/until pair under path.
func (k *checker) window(path string, from, until time.Time) {
	if from.IsZero() {
		k.add(path+".from", "required")
	}
	switch {
	case until.IsZero():
		k.add(path+".until", "required")
	case !from.IsZero() && !until.After(from) && !k.tainted(path+".from"):
		k.add(path+".until", fmt.Sprintf("must be after from (%s), got %s",
			from.Format(time.RFC3339), until.Format(time.RFC3339)))
	}
}

// isCurrency reports whether s looks like an ISO 4217 code.
func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
