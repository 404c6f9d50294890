package natshub

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// File names inside the hub's directory.
const (
	// CredentialsFile is the credential store, in the hub's directory (mode 0600).
	CredentialsFile = "credentials.json"
	// UsersConfFile is the nats-server "authorization" block generated from the store,
	// for an external cluster's configuration to include.
	UsersConfFile = "users.conf"
	// IssuedDir is the directory (under the hub's directory) where AddFacility writes
	// each garage's credentials file, <id>.json, for the installer to copy.
	IssuedDir = "issued"
)

// CloudUser is the hub user of cloud processes: no restrictions, client connections only.
const CloudUser = "gh-cloud"

// bcryptCost is the work factor of the facility password hashes. The secrets are 192
// random bits, so the work factor adds nothing against cracking a leaked hash; it is
// paid on every leaf (re)connection, which after a hub restart is every garage at once.
// Cost 8 is about 15 ms per connection on one core.
const bcryptCost = 8

var facilityRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrInvalidFacility reports a facility id that does not match ^[a-z0-9][a-z0-9-]{0,62}$.
var ErrInvalidFacility = errors.New("natshub: invalid facility id")

// ValidateFacility reports whether id is a valid facility id: lower-case letters,
// digits and dashes, starting with a letter or digit, at most 63 characters. Such an
// id is always a single NATS subject token.
func ValidateFacility(id string) error {
	if !facilityRE.MatchString(id) {
		return fmt.Errorf("%w %q", ErrInvalidFacility, id)
	}
	return nil
}

// FacilityUser is the hub user name of a facility's leaf connection.
func FacilityUser(facility string) string { return "fac-" + facility }

// InboxPrefix is the inbox prefix a garage's NATS clients must use
// (nats.CustomInboxPrefix(InboxPrefix(id))): replies to the garage's requests, such as
// JetStream publish acknowledgements and consumer deliveries, cross the leaf connection
// only on this prefix. The default "_INBOX." prefix is not allowed to the garage.
func InboxPrefix(facility string) string { return "_INBOX_" + facility }

// FacilityPermissions are the permissions of a facility's hub user, written from the
// garage's point of view (publish: what the garage may send to the hub; subscribe:
// what the hub may deliver to the garage). nats-server swaps them internally on the
// accepting side of a leaf connection, and enforces them on every message in both
// directions; it also sends them to the garage's server, which filters locally.
//
// The JetStream API subjects let the garage read its own downlink documents through
// the leaf with an ordered consumer filtered to exactly gh.fac.<id>.down.> (the server
// checks that the filter in the subject matches the consumer's configuration) and by
// direct get of the last message of one of its subjects. Nothing else of the hub's
// JetStream API is open to a garage: no stream info, list, purge or delete.
func FacilityPermissions(facility string) *server.Permissions {
	f := "gh.fac." + facility
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			f + ".evt.>",
			f + ".rep.>",
			"$JS." + Domain + ".API.CONSUMER.CREATE." + DownStream + ".*." + f + ".down.>",
			"$JS." + Domain + ".API.CONSUMER.MSG.NEXT." + DownStream + ".*",
			"$JS." + Domain + ".API.DIRECT.GET." + DownStream + "." + f + ".down.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			f + ".down.>",
			f + ".cmd.>",
			InboxPrefix(facility) + ".>",
		}},
	}
}

// Credentials is the hub's credential store, kept as JSON in <dir>/credentials.json.
// It holds bcrypt hashes of the garages' secrets, never the secrets themselves, and
// the cloud service user's password, which the hub itself connects with.
type Credentials struct {
	// LeafURL is the URL garages dial, written into the files AddFacility issues.
	// Start records the leaf listener's URL (or Config.LeafAdvertise) here.
	LeafURL string `json:"leaf_url,omitempty"`
	// CloudPassword is the password of CloudUser.
	CloudPassword string `json:"cloud_password"`
	// Facilities maps a facility id to its credential.
	Facilities map[string]FacilityCredential `json:"facilities"`
}

// FacilityCredential is one garage's entry in the store.
type FacilityCredential struct {
	// User is the hub user name, FacilityUser(id).
	User string `json:"user"`
	// PasswordHash is the bcrypt hash of the garage's secret.
	PasswordHash string `json:"password_hash"`
	// Issued is when the secret was created or last rotated.
	Issued time.Time `json:"issued"`
}

// GarageCredentials is the file AddFacility writes to <dir>/issued/<id>.json for the
// installer to copy to the garage. The edge reads it to configure its leaf remote.
type GarageCredentials struct {
	// Facility is the facility id.
	Facility string `json:"facility"`
	// URL is the hub's leafnode URL (nats-leaf:// or tls://), without user info;
	// empty when no hub has recorded one yet.
	URL string `json:"url"`
	// User and Password authenticate the leaf connection.
	User     string `json:"user"`
	Password string `json:"password"`
	// HubDomain is the hub's JetStream domain ("hub").
	HubDomain string `json:"hub_domain"`
	// InboxPrefix is the inbox prefix the garage's NATS clients must use.
	InboxPrefix string `json:"inbox_prefix"`
}

// RemoteURL is the URL for the garage's leaf remote: URL with the user and password
// as user info, which is how nats-server's leaf remotes carry them.
func (g GarageCredentials) RemoteURL() (*url.URL, error) {
	if g.URL == "" {
		return nil, errors.New("natshub: credentials without a hub URL")
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		return nil, fmt.Errorf("natshub: hub URL: %w", err)
	}
	u.User = url.UserPassword(g.User, g.Password)
	return u, nil
}

// LoadCredentials reads the credential store in dir. A missing store is not an error:
// it returns an empty store with a fresh cloud password, not yet saved.
func LoadCredentials(dir string) (*Credentials, error) {
	data, err := os.ReadFile(filepath.Join(dir, CredentialsFile))
	if errors.Is(err, os.ErrNotExist) {
		pw, err := newSecret()
		if err != nil {
			return nil, err
		}
		return &Credentials{CloudPassword: pw, Facilities: map[string]FacilityCredential{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natshub: read credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("natshub: parse %s: %w", CredentialsFile, err)
	}
	if c.CloudPassword == "" {
		return nil, fmt.Errorf("natshub: %s has no cloud password", CredentialsFile)
	}
	if c.Facilities == nil {
		c.Facilities = map[string]FacilityCredential{}
	}
	for id, f := range c.Facilities {
		if err := ValidateFacility(id); err != nil {
			return nil, fmt.Errorf("natshub: %s: %w", CredentialsFile, err)
		}
		if f.User != FacilityUser(id) || !strings.HasPrefix(f.PasswordHash, "$2") {
			return nil, fmt.Errorf("natshub: %s: bad entry for facility %q", CredentialsFile, id)
		}
	}
	return &c, nil
}

// Save writes the store to dir atomically, and regenerates users.conf beside it.
func (c *Credentials) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, CredentialsFile), append(data, '\n')); err != nil {
		return err
	}
	conf, err := c.UsersConf()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, UsersConfFile), conf)
}

// users is the hub's user list: the cloud user, with cloudHash, a bcrypt hash of its
// password, and one user per facility.
func (c *Credentials) users(cloudHash string) []*server.User {
	// The connection type names are those of github.com/nats-io/jwt/v2.
	users := []*server.User{{
		Username:               CloudUser,
		Password:               cloudHash,
		AllowedConnectionTypes: map[string]struct{}{"STANDARD": {}, "IN_PROCESS": {}},
	}}
	for _, id := range slices.Sorted(maps.Keys(c.Facilities)) {
		f := c.Facilities[id]
		users = append(users, &server.User{
			Username:               f.User,
			Password:               f.PasswordHash,
			Permissions:            FacilityPermissions(id),
			AllowedConnectionTypes: map[string]struct{}{"LEAFNODE": {}},
		})
	}
	return users
}

// hashCloudPassword is a bcrypt hash of the cloud password.
func (c *Credentials) hashCloudPassword() (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(c.CloudPassword), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("natshub: hash: %w", err)
	}
	return string(h), nil
}

// UsersConf renders the store as a nats-server configuration "authorization" block,
// for an external cluster's nats-server.conf to include. Passwords are bcrypt hashes.
func (c *Credentials) UsersConf() ([]byte, error) {
	hash, err := c.hashCloudPassword()
	if err != nil {
		return nil, err
	}
	users := c.users(hash)
	type perm struct {
		Allow []string `json:"allow"`
	}
	type perms struct {
		Publish   perm `json:"publish"`
		Subscribe perm `json:"subscribe"`
	}
	type user struct {
		User        string   `json:"user"`
		Password    string   `json:"password"`
		Types       []string `json:"allowed_connection_types"`
		Permissions *perms   `json:"permissions,omitempty"`
	}
	var out []user
	for _, u := range users {
		e := user{User: u.Username, Password: u.Password, Types: slices.Sorted(maps.Keys(u.AllowedConnectionTypes))}
		if p := u.Permissions; p != nil {
			e.Permissions = &perms{Publish: perm{p.Publish.Allow}, Subscribe: perm{p.Subscribe.Allow}}
		}
		out = append(out, e)
	}
	var b strings.Builder
	b.WriteString("# Generated by gatehouse (cloud/natshub) from " + CredentialsFile + ". Do not edit:\n")
	b.WriteString("# issue garage credentials with `gatehouse-cloud facility add <id>`, then reload.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range out {
		// JSON is valid nats-server configuration syntax; quoted strings are not
		// subject to $variable expansion, which matters for bcrypt hashes.
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false) // nats-server's parser knows no \u escapes
		if err := enc.Encode(u); err != nil {
			return nil, err
		}
		b.WriteString("    ")
		b.Write(line.Bytes())
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String()), nil
}

// AddFacility creates the credentials of facility id in the store in dir, or rotates
// them if they exist, and writes the garage's credentials file to
// <dir>/issued/<id>.json (mode 0600) for the installer to copy to the garage and then
// delete. It returns the hub user and the new secret. A running embedded hub applies
// the change on ReloadCredentials (Hub.AddFacility does both); an external cluster on
// a configuration reload after users.conf is copied to its nodes.
func AddFacility(dir, id string) (user, secret string, err error) {
	if err := ValidateFacility(id); err != nil {
		return "", "", err
	}
	c, err := LoadCredentials(dir)
	if err != nil {
		return "", "", err
	}
	secret, err = newSecret()
	if err != nil {
		return "", "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), bcryptCost)
	if err != nil {
		return "", "", fmt.Errorf("natshub: hash secret: %w", err)
	}
	user = FacilityUser(id)
	c.Facilities[id] = FacilityCredential{User: user, PasswordHash: string(hash), Issued: time.Now().UTC()}
	if err := c.Save(dir); err != nil {
		return "", "", err
	}
	g := GarageCredentials{Facility: id, URL: c.LeafURL, User: user, Password: secret, HubDomain: Domain, InboxPrefix: InboxPrefix(id)}
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, IssuedDir), 0o700); err != nil {
		return "", "", fmt.Errorf("natshub: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, IssuedDir, id+".json"), append(data, '\n')); err != nil {
		return "", "", err
	}
	return user, secret, nil
}

// RemoveFacility deletes facility id's credentials from the store in dir; after the
// reload its garage can no longer connect. Removing an unknown facility is not an error.
func RemoveFacility(dir, id string) error {
	if err := ValidateFacility(id); err != nil {
		return err
	}
	c, err := LoadCredentials(dir)
	if err != nil {
		return err
	}
	delete(c.Facilities, id)
	if err := c.Save(dir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, IssuedDir, id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("natshub: %w", err)
	}
	return nil
}

// newSecret returns 192 random bits, base64url: safe in a URL's user info.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("natshub: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeFileAtomic writes data to name through a temporary file and a rename, so that
// a crash leaves the old or the new file, never a torn one.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("natshub: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("natshub: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("natshub: sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("natshub: %w", err)
	}
	return nil
}
