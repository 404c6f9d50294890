package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// downKinds are the downlink documents a garage applies. Each is a
// gh.CredentialsReplaced holding the whole list of its kind; a garage refuses other
// kinds.
var downKinds = []string{"permits", "reservations", "blocklist"}

const publishUsage = `usage: gatehouse-cloud publish [--data-dir DIR] [--version N] FACILITY KIND FILE|-
  KIND: permits, reservations or blocklist; FILE (or - for standard input) is the
  whole list as JSON, e.g. {"blocklist":[{"plate":"AB123CD","reason":"stolen"}]} or
  {"permits":[{"id":"p-1","holder":"ACME","plates":["AB123CD"],"until":"2027-01-01T00:00:00Z"}]}`

func publish(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir, _ := dataDirFlag(fs, getenv)
	natsURL := fs.String("nats-url", getenv("GATEHOUSE_NATS_URL"), "the hub's client URL; empty: the embedded hub of the gatehouse-cloud running on --data-dir (GATEHOUSE_NATS_URL)")
	natsCA := fs.String("nats-ca", getenv("GATEHOUSE_NATS_CA"), "CA certificate file for a tls:// --nats-url (GATEHOUSE_NATS_CA)")
	version := fs.Uint64("version", 0, "publish as this version, which must not be older than the one the hub holds; 0: the version after the one the hub holds")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the hub")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return errors.New(publishUsage)
	}
	facility, kind, file := pos[0], pos[1], pos[2]
	if err := natshub.ValidateFacility(facility); err != nil {
		return fmt.Errorf("facility id %q: lower-case letters, digits and dashes, as in the garage's config", facility)
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	doc, err := parseDownDocument(kind, data)
	if err != nil {
		return err
	}
	if doc.Version != 0 && *version != 0 && doc.Version != *version {
		return fmt.Errorf("the document says version %d, --version %d", doc.Version, *version)
	}
	if doc.Version != 0 {
		*version = doc.Version
	}

	hub, err := connectHub(ctx, *dir, *natsURL, *natsCA, *timeout, stderr)
	if err != nil {
		return err
	}
	defer hub.Shutdown()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	what := fmt.Sprintf("%s's %s", facility, kind)
	if *version == 0 {
		v, err := hub.PublishDownNext(ctx, facility, kind, func(v uint64) ([]byte, error) {
			doc.Version = v
			return proto.Marshal(doc)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "published %s version %d (%d entries); the garage applies it when it is connected, at once or on its return\n", what, v, entries(doc))
		return nil
	}
	held, err := hub.DownVersion(ctx, facility, kind)
	if err != nil {
		return err
	}
	if held == *version {
		fmt.Fprintf(stdout, "the hub already holds %s version %d: nothing published (a changed list needs a new version)\n", what, held)
		return nil
	}
	doc.Version = *version
	body, err := proto.Marshal(doc)
	if err != nil {
		return err
	}
	err = hub.PublishDown(ctx, facility, kind, *version, body)
	if errors.Is(err, natshub.ErrStaleVersion) {
		return fmt.Errorf("refused: the hub holds %s version %d, newer than %d; versions never go backwards (leave out --version to publish the next one)",
			what, held, *version)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s version %d (%d entries); the garage applies it when it is connected, at once or on its return\n", what, *version, entries(doc))
	return nil
}

// parseDownDocument reads the JSON form of a downlink document of kind: a
// gh.CredentialsReplaced with only the list of that kind. Unknown fields are errors,
// so that a misspelt field does not publish an empty list.
func parseDownDocument(kind string, data []byte) (*gh.CredentialsReplaced, error) {
	if !slices.Contains(downKinds, kind) {
		return nil, fmt.Errorf("document kind %q: a garage applies %v", kind, downKinds)
	}
	doc := new(gh.CredentialsReplaced)
	if err := protojson.Unmarshal(data, doc); err != nil {
		return nil, fmt.Errorf("%s document: %w", kind, err)
	}
	if doc.Kind != "" && doc.Kind != kind {
		return nil, fmt.Errorf("the document says kind %q, the command %q", doc.Kind, kind)
	}
	doc.Kind = kind
	others := map[string]int{"permits": len(doc.Permits), "reservations": len(doc.Reservations), "blocklist": len(doc.Blocklist)}
	for k, n := range others {
		if k != kind && n > 0 {
			return nil, fmt.Errorf("a %s document with %d %s entries: publish those as their own document", kind, n, k)
		}
	}
	for i, p := range doc.Permits {
		if p.Id == "" || len(p.Plates)+len(p.Cards) == 0 {
			return nil, fmt.Errorf("permit %d: id and at least one plate or card are required", i+1)
		}
	}
	for i, r := range doc.Reservations {
		if r.Id == "" || r.Plate == "" && r.Code == "" {
			return nil, fmt.Errorf("reservation %d: id and a plate or code are required", i+1)
		}
	}
	for i, b := range doc.Blocklist {
		if b.Plate == "" && b.Card == "" {
			return nil, fmt.Errorf("block list entry %d: a plate or a card is required", i+1)
		}
	}
	return doc, nil
}

func entries(doc *gh.CredentialsReplaced) int {
	return len(doc.Permits) + len(doc.Reservations) + len(doc.Blocklist)
}
