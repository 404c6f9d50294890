package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/go-pdf/fpdf"
	"github.com/gofiber/fiber/v2"
)

// A receipt is issued for a payment that succeeded, under its gapless number. It
// shows the facility, what was paid for, the amount, the refunds and the provider's
// reference; never a card number, which the cloud never has.

// receipt is what both renderings show.
type receipt struct {
	Number     string
	Issued     string
	Facility   string
	Address    []string
	For        []string
	Amount     string
	Refunds    []receiptRefund
	Net        string
	Provider   string
	Reference  string
	PaymentID  string
	Refunded   bool
	StatusNote string
}

type receiptRefund struct {
	When, Amount, Reason string
}

// minorDigits are the currencies whose minor unit is not a hundredth (ISO 4217).
var minorDigits = map[string]int{"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "XOF": 0, "XAF": 0, "HUF": 2,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}

// formatAmount writes minor units as "12.50 EUR".
func formatAmount(minor int64, currency string) string {
	d, ok := minorDigits[currency]
	if !ok {
		d = 2
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if d == 0 {
		return fmt.Sprintf("%s%d %s", sign, minor, currency)
	}
	pow := int64(1)
	for range d {
		pow *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, minor/pow, d, minor%pow, currency)
}

// receiptOf gathers a visible payment's receipt; ECONFLICT when it has none.
func (a *api) receiptOf(c *fiber.Ctx, ctx context.Context) (receipt, error) {
	pay, err := a.visiblePayment(c, ctx)
	if err != nil {
		return receipt{}, err
	}
	if pay.ReceiptNumber == "" || !pay.Status.Paid() {
		return receipt{}, cloud.Errorf(cloud.ECONFLICT, "payment %s is %s: only a payment that succeeded has a receipt", pay.ID, pay.Status)
	}
	f, err := a.db.Facility(ctx, pay.Facility)
	if err != nil && cloud.ErrorCode(err) != cloud.ENOTFOUND {
		return receipt{}, err
	}
	loc, lerr := time.LoadLocation(f.Timezone)
	if lerr != nil || f.Timezone == "" {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	rs, err := a.db.PaymentRefunds(ctx, pay.ID)
	if err != nil {
		return receipt{}, err
	}
	r := receipt{Number: pay.ReceiptNumber, Issued: at(pay.SucceededAt), Facility: cmp.Or(f.Name, pay.Facility),
		Amount: formatAmount(pay.Amount, pay.Currency), Provider: pay.Provider, Reference: pay.ProviderReference, PaymentID: pay.ID}
	for _, s := range []string{f.Address, strings.TrimSpace(f.City + " " + f.Country)} {
		if s != "" {
			r.Address = append(r.Address, s)
		}
	}
	switch {
	case pay.SessionID != "":
		r.For = append(r.For, "Parking stay "+pay.SessionID)
		if pay.Plate != "" {
			r.For = append(r.For, "Vehicle "+pay.Plate)
		}
	case pay.ReservationID != "":
		r.For = append(r.For, "Reservation "+pay.ReservationID)
		if pay.Plate != "" {
			r.For = append(r.For, "Vehicle "+pay.Plate)
		}
	}
	var refunded int64
	for _, x := range rs {
		if x.Status != postgres.RefundSucceeded {
			continue
		}
		refunded += x.Amount
		r.Refunds = append(r.Refunds, receiptRefund{When: at(x.UpdatedAt), Amount: formatAmount(x.Amount, pay.Currency), Reason: x.Reason})
	}
	r.Refunded = refunded > 0
	r.Net = formatAmount(pay.Amount-refunded, pay.Currency)
	return r, nil
}

var receiptTemplate = template.Must(template.New("receipt").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Receipt {{.Number}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;color:#222}
table{width:100%;border-collapse:collapse}td{padding:.3rem 0}td.r{text-align:right}
h1{font-size:1.4rem}.muted{color:#666;font-size:.9rem}</style></head>
<body><h1>Receipt {{.Number}}</h1>
<p><strong>{{.Facility}}</strong>{{range .Address}}<br>{{.}}{{end}}</p>
<p class="muted">Issued {{.Issued}}</p>
<table>
{{range .For}}<tr><td colspan="2">{{.}}</td></tr>{{end}}
<tr><td>Paid</td><td class="r">{{.Amount}}</td></tr>
{{range .Refunds}}<tr><td>Refunded {{.When}}{{if .Reason}} ({{.Reason}}){{end}}</td><td class="r">-{{.Amount}}</td></tr>{{end}}
{{if .Refunded}}<tr><td><strong>Net</strong></td><td class="r"><strong>{{.Net}}</strong></td></tr>{{end}}
</table>
<p class="muted">Payment {{.PaymentID}} via {{.Provider}}{{if .Reference}}, reference {{.Reference}}{{end}}</p>
</body></html>
`))

func (a *api) receiptHTML(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.receiptOf(c, ctx)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := receiptTemplate.Execute(&b, r); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(b.Bytes())
}

func (a *api) receiptPDF(c *fiber.Ctx) error {
	ctx, cancel := opContext(c)
	defer cancel()
	r, err := a.receiptOf(c, ctx)
	if err != nil {
		return err
	}
	b, err := receiptPDF(r)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`inline; filename="receipt-%s.pdf"`, r.Number))
	return c.Send(b)
}

// receiptPDF renders the receipt on one A4 page with the core fonts (text is
// translated to their code page, cp1252).
func receiptPDF(r receipt) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Receipt "+r.Number, true)
	pdf.SetCreator("Gatehouse", true)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 18)
	pdf.Cell(0, 10, tr("Receipt "+r.Number))
	pdf.Ln(12)
	pdf.SetFont("Helvetica", "B", 12)
	pdf.Cell(0, 6, tr(r.Facility))
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "", 11)
	for _, l := range r.Address {
		pdf.Cell(0, 6, tr(l))
		pdf.Ln(6)
	}
	pdf.Cell(0, 6, tr("Issued "+r.Issued))
	pdf.Ln(10)
	for _, l := range r.For {
		pdf.Cell(0, 6, tr(l))
		pdf.Ln(6)
	}
	row := func(label, amount string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetFont("Helvetica", style, 11)
		pdf.CellFormat(130, 7, tr(label), "", 0, "L", false, 0, "")
		pdf.CellFormat(50, 7, tr(amount), "", 1, "R", false, 0, "")
	}
	pdf.Ln(2)
	row("Paid", r.Amount, true)
	for _, x := range r.Refunds {
		label := "Refunded " + x.When
		if x.Reason != "" {
			label += " (" + x.Reason + ")"
		}
		row(label, "-"+x.Amount, false)
	}
	if r.Refunded {
		row("Net", r.Net, true)
	}
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "", 9)
	ref := "Payment " + r.PaymentID + " via " + r.Provider
	if r.Reference != "" {
		ref += ", reference " + r.Reference
	}
	pdf.MultiCell(0, 5, tr(ref), "", "L", false)
	var b bytes.Buffer
	if err := pdf.Output(&b); err != nil {
		return nil, fmt.Errorf("receipt pdf: %w", err)
	}
	return b.Bytes(), nil
}
