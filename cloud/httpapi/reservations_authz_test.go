package httpapi_test

// The reservation and tariff routes' classes in the authorization matrix
// (authz_matrix_test.go), kept beside the routes they classify. Bookings by id are
// further limited to their driver and their facility's staff: TestReservationsAuthorization.
func init() {
	for op, cl := range map[string]class{
		"GET /v1/facilities/{facility}/reservable":         visibleA,
		"GET /v1/facilities/{facility}/reservations":       staffOfANK,
		"GET /v1/facilities/{facility}/reservation-policy": visibleA,
		"PUT /v1/facilities/{facility}/reservation-policy": mgrsOfA,
		"GET /v1/facilities/{facility}/quote":              visibleA,
		"POST /v1/facilities/{facility}/quote":             visibleA,
		"GET /v1/facilities/{facility}/tariffs":            visibleA,
		"PUT /v1/facilities/{facility}/tariffs":            mgrsOfA,
		"POST /v1/reservations":                            accounts,
		"GET /v1/reservations/{id}":                        accounts,
		"PATCH /v1/reservations/{id}":                      accounts,
		"DELETE /v1/reservations/{id}":                     accounts,
		"POST /v1/reservations/{id}/confirm":               accounts,
		"GET /v1/reservations/{id}/qr.png":                 accounts,
		"GET /v1/me/reservations":                          accounts,
		"POST /v1/reservations/waitlist":                   accounts,
		"DELETE /v1/reservations/waitlist/{id}":            accounts,
		"GET /v1/me/waitlist":                              accounts,
	} {
		matrix[op] = cl
	}
}
