package plate_test

import (
	"fmt"

	"github.com/gatehouse-parking/gatehouse/edge/plate"
)

func ExampleMatch() {
	fmt.Println(plate.Match("ab-12 34", "AB1234"))
	fmt.Println(plate.Match("A8 1234", "AB1234"))
	fmt.Println(plate.Match("AB 2134", "AB1234"))
	fmt.Println(plate.Match("AB1", "A81"))
	// Output:
	// {Exact 0}
	// {Confusion 1}
	// {OneEdit 1}
	// {None 0}
}

func ExampleIndex_Best() {
	var x plate.Index
	x.Add("AB-1234", "permit-17")
	x.Add("CD-5678", "booking-3")
	x.Add("CD-5679", "booking-4")

	hit, outcome := x.Best("A8 1234")
	fmt.Println(outcome, hit.ID, hit.Plate, hit.Match.Kind)
	// CD567 is one edit from both bookings: the lane must not guess.
	_, outcome = x.Best("CD 567")
	fmt.Println(outcome)
	// Output:
	// Found permit-17 AB1234 Confusion
	// Ambiguous
}

func ExampleVote() {
	reads := []plate.Read{
		{Text: "AB-1234", Confidence: 0.9},
		{Text: "A8-1234", Confidence: 0.8},
		{Text: "AB-1234", Confidence: 0.85},
	}
	r := plate.Vote(reads, 0.5)
	fmt.Printf("%s %.2f %d/%d unsure=%v\n", r.Plate, r.Confidence, r.Votes, r.Total, r.Unsure)
	// Output:
	// AB1234 0.85 3/3 unsure=false
}
