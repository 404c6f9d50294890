package main

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
)

// hubAPI adapts the hub to what the REST API needs, in the domain's error codes.
type hubAPI struct{ h *natshub.Hub }

var _ httpapi.Hub = hubAPI{}

func (a hubAPI) Command(ctx context.Context, facility, verb string, body []byte) ([]byte, error) {
	reply, err := a.h.Command(ctx, facility, verb, body)
	switch {
	case errors.Is(err, natshub.ErrOffline):
		return nil, &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "the garage is offline; the command was not sent", Err: err}
	case errors.Is(err, natshub.ErrTimeout):
		return nil, &cloud.Error{Code: cloud.EUNAVAILABLE, Message: "the garage did not answer in time; the command may have been applied", Err: err}
	case errors.Is(err, natshub.ErrInvalidName):
		return nil, &cloud.Error{Code: cloud.EINVALID, Message: "invalid facility or command", Err: err}
	}
	return reply, err
}

func (a hubAPI) PublishDown(ctx context.Context, facility, kind string, version uint64, body []byte) error {
	err := a.h.PublishDown(ctx, facility, kind, version, body)
	if errors.Is(err, natshub.ErrStaleVersion) {
		return &cloud.Error{Code: cloud.ECONFLICT, Message: "a newer version of the document is already published", Err: err}
	}
	return err
}

func (a hubAPI) Presence(facility string) (bool, time.Time) { return a.h.Presence(facility) }
