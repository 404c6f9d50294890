package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
	"github.com/jackc/pgx/v5"
)

// Tariffs are a facility's rates as the garage's config file writes them, and which
// rate each zone charges (migration 0007). The cloud prices with the garage's own
// engine, edge/tariff, so that a quote in the app and the fee at the exit agree to the
// cent.
type Tariffs struct {
	Rates []tariff.Rate
	// ZoneRates maps a zone id to the id of the rate it charges.
	ZoneRates map[string]string
	// DefaultRate is the rate of zones ZoneRates does not name; "" for none.
	DefaultRate string
	Version     int64
	UpdatedAt   time.Time
	UpdatedBy   string
}

// Validate reports every problem with t: each rate must validate, ids must be unique
// and the rates that zones name must exist. It compiles the rates (loads their time
// zones).
func (t *Tariffs) Validate() error {
	var errs []error
	ids := map[string]bool{}
	for i := range t.Rates {
		r := &t.Rates[i]
		if err := r.Compile(); err != nil {
			errs = append(errs, fmt.Errorf("tariffs[%d] (%s): %w", i, r.ID, err))
			continue
		}
		if ids[r.ID] {
			errs = append(errs, fmt.Errorf("tariffs[%d]: id %q appears twice", i, r.ID))
		}
		ids[r.ID] = true
	}
	for zone, id := range t.ZoneRates {
		if !ids[id] {
			errs = append(errs, fmt.Errorf("zones.%s: no rate %q", zone, id))
		}
	}
	if t.DefaultRate != "" && !ids[t.DefaultRate] {
		errs = append(errs, fmt.Errorf("default_rate: no rate %q", t.DefaultRate))
	}
	return errors.Join(errs...)
}

// RateFor returns the rate to price a stay with: rateID when not "", else the zone's
// rate, else the default rate, else the only rate when there is one. It fails with
// EINVALID when none applies or rateID is unknown. The rates must be compiled
// (Validate, or as Tariffs returns them).
func (t *Tariffs) RateFor(zone, rateID string) (*tariff.Rate, error) {
	if rateID == "" && zone != "" {
		rateID = t.ZoneRates[zone]
	}
	if rateID == "" {
		rateID = t.DefaultRate
	}
	if rateID == "" && len(t.Rates) == 1 {
		return &t.Rates[0], nil
	}
	for i := range t.Rates {
		if t.Rates[i].ID == rateID {
			return &t.Rates[i], nil
		}
	}
	if rateID == "" {
		return nil, cloud.Errorf(cloud.EINVALID, "the facility has several rates and none for zone %q: name a rate", zone)
	}
	return nil, cloud.Errorf(cloud.EINVALID, "the facility has no rate %q", rateID)
}

// Tariffs returns the facility's tariffs, compiled; ENOTFOUND when it has none.
func (db *DB) Tariffs(ctx context.Context, facility string) (Tariffs, error) {
	return readTariffs(ctx, db.pool, facility)
}

func readTariffs(ctx context.Context, q querier, facility string) (Tariffs, error) {
	var t Tariffs
	var rates, zones []byte
	err := q.QueryRow(ctx, `SELECT rates, zone_rates, default_rate, version, updated_at, updated_by
		FROM tariffs WHERE facility_id = $1`, facility).Scan(&rates, &zones, &t.DefaultRate, &t.Version, &t.UpdatedAt, &t.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, cloud.Errorf(cloud.ENOTFOUND, "facility %q has no tariffs in the cloud", facility)
	}
	if err != nil {
		return t, wrap(err, "tariffs")
	}
	if err := json.Unmarshal(rates, &t.Rates); err != nil {
		return t, wrap(err, "tariffs")
	}
	if err := json.Unmarshal(zones, &t.ZoneRates); err != nil {
		return t, wrap(err, "tariffs")
	}
	for i := range t.Rates {
		if err := t.Rates[i].Compile(); err != nil {
			return t, wrap(fmt.Errorf("stored rate %q: %w", t.Rates[i].ID, err), "tariffs")
		}
	}
	return t, nil
}

// querier is what reads need of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SetTariffs replaces the facility's tariffs, which must validate (EINVALID
// otherwise), and returns them as stored with the next version. ENOTFOUND for an
// unknown facility.
func (db *DB) SetTariffs(ctx context.Context, facility string, t Tariffs, actor string) (Tariffs, error) {
	if err := t.Validate(); err != nil {
		return t, &cloud.Error{Code: cloud.EINVALID, Message: err.Error()}
	}
	if t.ZoneRates == nil {
		t.ZoneRates = map[string]string{}
	}
	if t.Rates == nil {
		t.Rates = []tariff.Rate{}
	}
	rates, err := json.Marshal(t.Rates)
	if err != nil {
		return t, wrap(err, "set tariffs")
	}
	zones, err := json.Marshal(t.ZoneRates)
	if err != nil {
		return t, wrap(err, "set tariffs")
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO tariffs AS t (facility_id, rates, zone_rates, default_rate, updated_by)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (facility_id) DO UPDATE SET rates = EXCLUDED.rates, zone_rates = EXCLUDED.zone_rates,
			default_rate = EXCLUDED.default_rate, updated_by = EXCLUDED.updated_by, updated_at = now(), version = t.version + 1
		RETURNING version, updated_at, updated_by`, facility, rates, zones, t.DefaultRate, actor).Scan(&t.Version, &t.UpdatedAt, &t.UpdatedBy)
	if pgCode(err) == foreignKeyViolation {
		return t, cloud.Errorf(cloud.ENOTFOUND, "no facility %q", facility)
	}
	return t, wrap(err, "set tariffs")
}

// Quote prices a stay at the facility with edge/tariff: under rateID when not "",
// else under the zone's rate (see RateFor). It returns the rate used. ENOTFOUND when
// the facility has no tariffs; EINVALID for a stay the engine cannot price.
func (db *DB) Quote(ctx context.Context, facility, zone, rateID string, in tariff.Input) (string, tariff.Quote, error) {
	t, err := db.Tariffs(ctx, facility)
	if err != nil {
		return "", tariff.Quote{}, err
	}
	return quoteWith(&t, zone, rateID, in)
}

func quoteWith(t *Tariffs, zone, rateID string, in tariff.Input) (string, tariff.Quote, error) {
	r, err := t.RateFor(zone, rateID)
	if err != nil {
		return "", tariff.Quote{}, err
	}
	q, err := r.Quote(in)
	if errors.Is(err, tariff.ErrInvalidInput) {
		return r.ID, q, &cloud.Error{Code: cloud.EINVALID, Message: "the stay cannot be priced: " + err.Error(), Err: err}
	}
	if err != nil {
		return r.ID, q, wrap(err, "quote")
	}
	return r.ID, q, nil
}

// reservationPrice is what a window costs in the zone, nil when the facility has no
// tariff for it.
func reservationPrice(ctx context.Context, q querier, facility, zone string, from, until time.Time) (*int64, string, error) {
	t, err := readTariffs(ctx, q, facility)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := t.RateFor(zone, "")
	if err != nil {
		return nil, "", nil // no rate for the zone: the garage charges at exit
	}
	quote, err := r.Quote(tariff.Input{Entry: from, Exit: until})
	if err != nil {
		return nil, "", wrap(err, "price the booking")
	}
	return &quote.Total, quote.Currency, nil
}
