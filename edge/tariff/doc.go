// Package tariff is Gatehouse's tariff engine: it owns the rate model
// (modelled on APDS rate tables) and the one pricing algorithm that turns a
// stay into a fee. The exit lanes and the cloud price-quote endpoint both
// call it, so it is pure: no I/O, no clock, no global state, and the same
// Rate and Input give the same Quote, to the cent, on every host.
//
// Money is int64 minor units (cents) of Rate.Currency. Durations are
// elapsed time; time-of-day bands use the wall clock in Rate.Location.
//
// # Pricing
//
// Rate.Quote prices an Input in these steps:
//
//  1. Convenience time. If the stay (exit minus entry) is at most FreeTime,
//     the stay costs nothing. A longer stay is charged from entry.
//  2. Free-minutes validations are subtracted from the start of the stay;
//     what remains is the chargeable stay, priced as if the car had entered
//     at exit minus the chargeable stay.
//  3. The chargeable stay is cut into increments of Increment from its start;
//     a started increment is charged in full. Increments are grouped into
//     24-hour periods of elapsed time from the start; Increment divides 24h,
//     so no increment straddles two periods.
//  4. Each increment is priced by the first band whose [start, end) covers
//     the wall-clock time the increment starts at. Otherwise it is priced by
//     the tier its offset from the start of the chargeable stay has reached:
//     tiers measure cumulative stay from entry and do not restart each
//     period (later periods usually sit in the last tier and hit DailyMax).
//     Tier bounds are multiples of Increment, so no increment straddles two
//     tiers.
//  5. A band with a Flat amount is charged once per occurrence the stay
//     enters (an occurrence is one calendar day's band; the part of a
//     midnight-crossing band after midnight belongs to the previous day's
//     occurrence), in the period of the first increment inside it.
//  6. Each period's sum is capped at DailyMax, and the periods are summed.
//  7. Validations: flat rate (fee = min(fee, value)), then percent (each
//     rounds its discount down to the minor unit), then amount; the fee
//     never goes below zero.
//  8. A lost ticket makes the fee max(LostTicket, fee): the lost-ticket fee
//     is a floor that validations and convenience time cannot lower.
//  9. Due is Total minus Paid, never negative, and zero if the exit is no
//     later than PaidAt plus Grace.
//
// Across a DST change elapsed time drives increments, tiers and periods, so
// a 24-hour period may span 23 or 25 wall-clock hours, while bands follow the
// wall clock and so see an hour skipped or repeated.
package tariff
