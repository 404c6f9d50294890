package httpapi_test

// The payment routes' classes in the authorization matrix (authz_matrix_test.go),
// kept beside the routes they classify. The matrix runs without a provider: allowed
// callers get 503 where the provider is needed, 404 for the ids that name nothing.
func init() {
	for op, cl := range map[string]class{
		"POST /v1/payments":                            driversOnl,
		"GET /v1/payments/{id}":                        accounts,
		"GET /v1/payments/{id}/receipt":                accounts,
		"GET /v1/payments/{id}/receipt.pdf":            accounts,
		"POST /v1/payments/{id}/refunds":               allMgrs, // and then only of the payment's facility: TestPaymentAuthz
		"GET /v1/me/payments":                          driversOnl,
		"GET /v1/me/payment-methods":                   driversOnl,
		"POST /v1/me/payment-methods":                  driversOnl,
		"POST /v1/webhooks/stripe":                     public, // the signature is the credential
		"GET /v1/facilities/{facility}/reconciliation": staffOfANK,
	} {
		matrix[op] = cl
	}
}
