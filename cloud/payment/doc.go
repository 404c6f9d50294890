// Package payment is the cloud's payments domain: the Provider interface that takes
// money (Stripe in package payment/stripe, the built-in test provider in
// payment/inproc), the statuses a payment goes through and the order they may only
// move forward in, and the events a provider's webhooks carry.
//
// What the cloud stores of a means of payment is the provider's token (a Stripe
// PaymentMethod id such as "pm_..."), never a card number: LooksLikeCardNumber lets
// callers refuse one before it reaches a provider or the database. See
// docs/payments.md.
package payment
