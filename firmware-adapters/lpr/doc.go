// Package lpr reads licence plates from plain IP cameras, for lanes whose
// cameras cannot read plates themselves. It hands the garage the same
// edge.PlateRead a camera-push adapter does (normalized text, a confidence, the
// stored images), so the lane logic cannot tell the two apart.
//
// The recognizer (built with -tags gocv: it needs OpenCV through gocv) works in
// the spirit of OpenALPR:
//
//  1. localisation (segment.go): adaptive thresholds in both polarities, at three block
//     sizes and offsets, the two finer ones once more with long horizontal
//     runs of ink (a frame the characters touch) removed, and the default
//     block with a low offset (plates of little contrast); connected components shaped like characters; chains of four to ten of
//     similar height on one baseline are candidate plates; text with no room
//     for a plate around it inside the image (a camera's date caption, a
//     cut-off plate) ranks low;
//  2. deskew: the chain's baseline angle is rotated out;
//  3. segmentation (read.go): each component of the chain is one character, except one
//     twice as wide as the line's characters, which is also cut at its thinnest
//     column and read as two when the classifier is surer of the halves (a
//     hyphen or a neighbour touching a character); windows one and two pitches
//     beyond either end (where the ink spans most of the character height),
//     halfway between neighbours two pitches apart and a third and two thirds
//     across three pitches may add characters the components missed;
//  4. recognition: each character's box is grown to the line's median top and
//     bottom and its crop scaled to 16×24; an ensemble of two small
//     perceptrons (network.go; its layers in C, matvec_cgo.go) classifies its pixels, aspect ratio, width
//     relative to the line and edge-direction histograms as a character or
//     "not a character" (Reject), which is dropped; they are trained by
//     cmd/lprtrain on plates rendered with Debian's fonts and pinned web fonts
//     (synth), never on photographs, and embedded as model.bin;
//  5. formats: per country, letter/digit shapes resolve O/0, I/1, B/8, S/5, Z/2
//     and G/6 (format.go; between O and 0 the shape has the last word, US
//     plates read the O/0 glyph as 0, and I and Q are rare there); candidates
//     rank by confidence, format, length, character size and second opinions
//     from the other binarizations (rank.go), and a plate's confidence is
//     shared with other texts that rank about as well and halved for a
//     reading of fewer than five or more than eight characters; a small
//     convolutional network (convnet.go, trained with PyTorch by
//     cmd/lprtrain/train-cnn.py on the same glyphs, embedded as checker.bin)
//     gives a second opinion on each character of the plates returned, and a
//     plate's confidence is multiplied by how far it agrees
//     (Recognizer.agreement);
//  6. voting: a Reader reads several frames per vehicle and votes with
//     plate.Vote; a vote without a strict majority is reported unsure (text with
//     confidence 0), never guessed.
//
// Every image is checked (size, type, header dimensions) before OpenCV sees it:
// a C++ exception in OpenCV aborts the process. docs/lpr.md is the operator's
// guide; docs/BENCHMARKS.md has the measured accuracy.
//
// The pure-Go parts (classifier, formats, image store) build without gocv; the
// default edge build has no Reader and cmd/gatehouse-edge says so.
package lpr
