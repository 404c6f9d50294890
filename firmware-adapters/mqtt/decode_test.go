package mqtt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// seeds adds every file of testdata/<dir> to the fuzz corpus.
func seeds(f *testing.F, dir string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		field   string
		want    reading
		wantErr bool
	}{
		{name: "file occupied", payload: string(mustRead(t, "json/occupied.json")),
			want: reading{occupied: true, hasOccupied: true, battery: 3.6, hasBattery: true, at: time.Date(2026, 3, 14, 8, 15, 0, 0, time.UTC)}},
		{name: "file free numeric", payload: string(mustRead(t, "json/free-numeric.json")),
			want: reading{hasOccupied: true, battery: 3.58, hasBattery: true}},
		{name: "heartbeat without occupancy", payload: string(mustRead(t, "json/heartbeat.json")),
			want: reading{battery: 3.55, hasBattery: true, at: time.Date(2026, 3, 14, 7, 16, 0, 125e6, time.UTC)}},
		{name: "one", payload: `{"occupied": 1}`, want: reading{occupied: true, hasOccupied: true}},
		{name: "other field", payload: `{"carStatus": 1, "occupied": false}`, field: "carStatus", want: reading{occupied: true, hasOccupied: true}},
		{name: "nested field", payload: `{"state": {"occupied": true}}`, field: "state.occupied", want: reading{occupied: true, hasOccupied: true}},
		{name: "nested missing", payload: `{"state": {}}`, field: "state.occupied", want: reading{}},
		{name: "null battery ignored", payload: `{"occupied": false, "battery": null}`, want: reading{hasOccupied: true}},
		{name: "broken JSON", payload: `{"occupied": tru`, wantErr: true},
		{name: "not an object", payload: `[true]`, wantErr: true},
		{name: "empty", payload: ``, wantErr: true},
		{name: "binary", payload: "\x00\xff\x10", wantErr: true},
		{name: "string occupancy", payload: `{"occupied": "yes"}`, wantErr: true},
		{name: "two", payload: `{"occupied": 2}`, wantErr: true},
		{name: "null occupancy", payload: `{"occupied": null}`, wantErr: true},
		{name: "battery string", payload: `{"occupied": true, "battery": "3.6"}`, wantErr: true},
		{name: "ts number", payload: `{"occupied": true, "ts": 1710000000}`, wantErr: true},
		{name: "ts garbage", payload: `{"occupied": true, "ts": "yesterday"}`, wantErr: true},
		{name: "nested not object", payload: `{"state": 1}`, field: "state.occupied", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field := tt.field
			if field == "" {
				field = DefaultField
			}
			got, err := decodeJSON([]byte(tt.payload), strings.Split(field, "."))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decodeJSON(%q) = %+v, nil; want an error", tt.payload, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeJSON(%q) error %v", tt.payload, err)
			}
			if !got.at.Equal(tt.want.at) {
				t.Errorf("decodeJSON(%q).at = %v; want %v", tt.payload, got.at, tt.want.at)
			}
			got.at, tt.want.at = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("decodeJSON(%q) = %+v; want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestDecodeChirpstack(t *testing.T) {
	object := string(mustRead(t, "chirpstack/up-object.json"))
	carStatus := string(mustRead(t, "chirpstack/up-carstatus.json"))
	raw := string(mustRead(t, "chirpstack/up-raw.json"))
	tests := []struct {
		name    string
		payload string
		prof    profile
		want    reading
		wantErr bool
	}{
		{name: "object", payload: object, prof: profile{devEUI: "0004A30B001C0530"},
			want: reading{occupied: true, hasOccupied: true, battery: 3.6, hasBattery: true, devEUI: "0004a30b001c0530", rssi: -87, snr: 7.5, hasRadio: true}},
		{name: "carStatus field", payload: carStatus, prof: profile{field: []string{"carStatus"}},
			want: reading{occupied: false, hasOccupied: true, devEUI: "70b3d5e75e00a042", rssi: -94, snr: 4, hasRadio: true}},
		{name: "carStatus missing default field", payload: carStatus,
			want: reading{devEUI: "70b3d5e75e00a042", rssi: -94, snr: 4, hasRadio: true}},
		{name: "raw bit", payload: raw, prof: profile{raw: true, byteIdx: 1, bit: 1},
			want: reading{occupied: true, hasOccupied: true, devEUI: "a84041000181c007", rssi: -112, snr: -9.5, hasRadio: true}},
		{name: "raw bit clear", payload: raw, prof: profile{raw: true, byteIdx: 0},
			want: reading{occupied: false, hasOccupied: true, devEUI: "a84041000181c007", rssi: -112, snr: -9.5, hasRadio: true}},
		{name: "object wins over raw", payload: object, prof: profile{raw: true, byteIdx: 0, bit: 7},
			want: reading{occupied: true, hasOccupied: true, battery: 3.6, hasBattery: true, devEUI: "0004a30b001c0530", rssi: -87, snr: 7.5, hasRadio: true}},
		{name: "unpadded base64", payload: `{"deviceInfo":{"devEui":"01"},"data":"AQ"}`, prof: profile{raw: true},
			want: reading{occupied: true, hasOccupied: true, devEUI: "01"}},
		{name: "minimal heartbeat", payload: `{"deviceInfo":{"devEui":"01"}}`, want: reading{devEUI: "01"}},
		{name: "null object", payload: `{"deviceInfo":{"devEui":"01"},"object":null}`, want: reading{devEUI: "01"}},
		{name: "raw byte out of range", payload: raw, prof: profile{raw: true, byteIdx: 3}, wantErr: true},
		{name: "raw no data", payload: `{"deviceInfo":{"devEui":"01"}}`, prof: profile{raw: true}, wantErr: true},
		{name: "other devEui", payload: object, prof: profile{devEUI: "0004a30b001c0531"}, wantErr: true},
		{name: "bad base64", payload: `{"deviceInfo":{"devEui":"01"},"data":"!!not base64!!"}`, wantErr: true},
		{name: "no deviceInfo", payload: `{"occupied": true}`, wantErr: true},
		{name: "deviceInfo wrong type", payload: `{"deviceInfo":"01"}`, wantErr: true},
		{name: "fPort string", payload: `{"deviceInfo":{"devEui":"01"},"fPort":"1"}`, wantErr: true},
		{name: "object string", payload: `{"deviceInfo":{"devEui":"01"},"object":"{}"}`, wantErr: true},
		{name: "occupancy string", payload: `{"deviceInfo":{"devEui":"01"},"object":{"occupied":"true"}}`, wantErr: true},
		{name: "bad time", payload: `{"deviceInfo":{"devEui":"01"},"time":"noon"}`, wantErr: true},
		{name: "rssi string", payload: `{"deviceInfo":{"devEui":"01"},"rxInfo":[{"rssi":"-80"}]}`, wantErr: true},
		{name: "broken JSON", payload: object[:len(object)/2], wantErr: true},
		{name: "not an object", payload: `"up"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.prof
			p.name = ProfileChirpstack
			if p.field == nil {
				p.field = []string{DefaultField}
			}
			got, err := decodeChirpstack([]byte(tt.payload), &p)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decodeChirpstack(%.60q) = %+v, nil; want an error", tt.payload, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeChirpstack(%.60q) error %v", tt.payload, err)
			}
			got.at = time.Time{}
			if got != tt.want {
				t.Errorf("decodeChirpstack(%.60q) = %+v; want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestDecodeChirpstackTime(t *testing.T) {
	p := profile{name: ProfileChirpstack, field: []string{DefaultField}}
	got, err := decodeChirpstack(mustRead(t, "chirpstack/up-object.json"), &p)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 3, 14, 8, 15, 0, 775023242, time.UTC)
	if !got.at.Equal(want) {
		t.Errorf("time = %v; want %v", got.at, want)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	seeds(f, "json")
	for _, s := range []string{`{"occupied": tru`, `{"occupied": "yes"}`, `{"occupied": 1e0}`, `{"state":{"occupied":[]}}`, "\x00\xff", `null`} {
		f.Add([]byte(s))
	}
	fields := [][]string{{DefaultField}, {"state", "occupied"}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, field := range fields {
			r, err := decodeJSON(payload, field)
			if err != nil {
				continue
			}
			if !json.Valid(payload) {
				t.Fatalf("decodeJSON(%q) accepted invalid JSON: %+v", payload, r)
			}
		}
	})
}

func FuzzDecodeChirpstack(f *testing.F) {
	seeds(f, "chirpstack")
	for _, s := range []string{`{"deviceInfo":{"devEui":"01"},"data":"!!"}`, `{"deviceInfo":{"devEui":"01"},"data":"AQ"}`,
		`{"deviceInfo":{"devEui":"01"},"object":{"occupied":2}}`, `{"deviceInfo":null}`, `{}`} {
		f.Add([]byte(s))
	}
	profiles := []profile{
		{name: ProfileChirpstack, field: []string{DefaultField}},
		{name: ProfileChirpstack, field: []string{"carStatus"}, raw: true, byteIdx: 1, bit: 1},
		{name: ProfileChirpstack, field: []string{"a", "b"}, raw: true, byteIdx: 200, bit: 7, devEUI: "0004a30b001c0530"},
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for i := range profiles {
			r, err := decodeChirpstack(payload, &profiles[i])
			if err != nil {
				continue
			}
			if !json.Valid(payload) {
				t.Fatalf("decodeChirpstack(%q) accepted invalid JSON: %+v", payload, r)
			}
			if r.devEUI == "" {
				t.Fatalf("decodeChirpstack(%q) accepted an uplink without devEui", payload)
			}
		}
	})
}
