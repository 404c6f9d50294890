package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gofiber/fiber/v2"
)

// opContext bounds how long an action waits for the garage to make it durable.
func opContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), opTimeout)
}

func (a *api) openLane(c *fiber.Ctx) error {
	var req openLaneRequest
	if err := decodeBody(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	id := c.Params("id")
	if err := a.g.OpenLane(ctx, id, operatorName(c), req.Reason); err != nil {
		return err
	}
	return a.sendLane(c, id)
}

func (a *api) payAtLane(c *fiber.Ctx) error {
	req := paymentRequest{methods: laneMethods}
	if err := decodeBody(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	id := c.Params("id")
	if err := a.g.PayAtLane(ctx, id, *req.Amount, req.Method, req.Reference); err != nil {
		return err
	}
	return a.sendLane(c, id)
}

// cardPayer is the optional capability of a garage whose exit kiosks have card
// terminals. *edge.Garage has it.
type cardPayer interface {
	PayByCard(ctx context.Context, lane string) (edge.CardPayment, error)
}

var _ cardPayer = (*edge.Garage)(nil)

// cardTimeout bounds a card payment: the terminal and its acquirer take longer than
// the store.
const cardTimeout = 45 * time.Second

// cardPaymentResponse is the answer to POST /v1/lanes/:id/card.
type cardPaymentResponse struct {
	Payment edge.CardPayment `json:"payment"`
	Lane    edge.LaneView    `json:"lane"`
}

// payByCard takes the fee the lane's kiosk shows through its card terminal. A
// decline is an answer (200, approved false, the kiosk's message), not an error.
func (a *api) payByCard(c *fiber.Ctx) error {
	if len(bytes.TrimSpace(c.Body())) > 0 {
		var req cardPaymentRequest
		if err := decodeBody(c.Body(), &req); err != nil {
			return err
		}
	}
	cp, ok := a.g.(cardPayer)
	if !ok {
		return edge.Errorf(edge.ECONFLICT, "this garage takes no card payments")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), cardTimeout)
	defer cancel()
	id := c.Params("id")
	p, err := cp.PayByCard(ctx, id)
	if err != nil {
		return err
	}
	v, err := a.findLane(id)
	if err != nil {
		return err
	}
	return c.JSON(cardPaymentResponse{Payment: p, Lane: v})
}

// sendLane answers an action on a lane with the lane's status after it.
func (a *api) sendLane(c *fiber.Ctx, id string) error {
	v, err := a.findLane(id)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (a *api) paySession(c *fiber.Ctx) error {
	req := paymentRequest{methods: sessionMethods}
	if err := decodeBody(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	id := c.Params("id")
	if err := a.g.PaySession(ctx, id, *req.Amount, req.Method, req.Reference); err != nil {
		return err
	}
	for _, s := range a.g.OpenSessions() {
		if s.ID == id {
			return c.Status(fiber.StatusCreated).JSON(s)
		}
	}
	// The vehicle left between the payment and this answer: the payment stands.
	return c.SendStatus(fiber.StatusCreated)
}

func (a *api) resetCount(c *fiber.Ctx) error {
	var req countRequest
	if err := decodeBody(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	id := c.Params("id")
	if err := a.g.ResetCount(ctx, id, *req.Occupied, operatorName(c), req.Reason); err != nil {
		return err
	}
	for _, z := range a.g.Occupancy() {
		if z.ID == id {
			return c.JSON(z)
		}
	}
	return edge.Errorf(edge.ENOTFOUND, "no zone %q", id)
}

// backup streams a consistent copy of the database. The copy is read inside one read
// transaction while the garage keeps writing; the pipe's reader is closed when the
// response ends, however it ends, so that the transaction never outlives the request.
func (a *api) backup(c *fiber.Ctx) error {
	pr, pw := io.Pipe()
	operator, rid := operatorName(c), requestID(c)
	go func() {
		n, err := a.store.Backup(pw)
		pw.CloseWithError(err)
		switch {
		case err == nil:
			a.log.Info("backup sent", "operator", operator, "bytes", n, "request_id", rid)
		case errors.Is(err, io.ErrClosedPipe):
			a.log.Warn("backup aborted: the client went away", "operator", operator, "request_id", rid)
		default:
			a.log.Error("backup failed", "operator", operator, "err", err, "request_id", rid)
		}
	}()
	// Read the start before committing to 200: a store that cannot begin a backup
	// gets a problem response, not a truncated file.
	head := make([]byte, 4096)
	n, err := io.ReadFull(pr, head)
	if n == 0 || (err != nil && !errors.Is(err, io.ErrUnexpectedEOF)) {
		pr.Close()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("empty backup")
		}
		return fmt.Errorf("backup: %w", err)
	}
	name := fmt.Sprintf("gatehouse-%s-%s.db", fileSafe(a.g.Facility().ID), time.Now().UTC().Format("20060102T150405Z"))
	c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendStream(&pipeStream{Reader: io.MultiReader(bytes.NewReader(head[:n]), pr), pipe: pr}, -1)
}

// pipeStream is a response body that closes its pipe when the server is done with it.
type pipeStream struct {
	io.Reader
	pipe *io.PipeReader
}

// Close implements io.Closer; fasthttp calls it when the response is written or fails.
func (s *pipeStream) Close() error { return s.pipe.Close() }

// fileSafe keeps the characters of s that are safe in a file name.
func fileSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if s == "" {
		return "garage"
	}
	return s
}
