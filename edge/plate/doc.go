// Package plate owns licence-plate text: turning raw ANPR/OCR output into a
// comparable form, deciding whether a camera read matches a known plate
// despite typical OCR errors, indexing many known plates for fast lookup,
// and voting over several reads of the same vehicle.
//
// The package is pure (no I/O, no clocks, no globals other than immutable
// tables) so that the lane controller, the cloud and future plate readers
// all match plates in exactly the same way.
//
// The pipeline is:
//
//  1. [Normalize] reduces any text to upper-case A–Z and 0–9.
//  2. [Canonical] folds OCR confusion classes (O/0, I/1, B/8, S/5, Z/2, G/6)
//     onto one representative each.
//  3. [Match] grades a read against one known plate as Exact, Confusion or
//     OneEdit; [Index] does the same against many plates at once.
//  4. [Vote] fuses several reads of one passage into one plate, and says
//     when it is unsure instead of guessing.
package plate
