package httpapi

import (
	"testing"
)

// FuzzDecodeAuthRequests feeds arbitrary bodies to the decoders of the account
// routes' requests: they never panic, and every body is either accepted or refused
// with a 4xx problem (never a 5xx).
func FuzzDecodeAuthRequests(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@example.com","password":"long enough password"}`,
		`{"email":"a@example.com","password":"x","totp_code":"123456"}`,
		`{"refresh_token":"abc"}`, `{"everywhere":true}`,
		`{"current_password":"a","new_password":"bbbbbbbbbbbb"}`, `{"code":"000000"}`,
		`{"role":"operator","facilities":["lot-1","lot-2"]}`,
		`{"name":"k","scopes":["status:read"],"facilities":["lot-1"]}`,
		`{"email":"x' OR '1'='1","password":"'; DROP TABLE users;--"}`,
		`{"email":"\u0000@x.y","name":"\ud800"}`, `{"facilities":[1,2]}`, `{"role":null}`,
		`{`, `[]`, `null`, `"x"`, `{} {}`, `{"email":"a"}x`, "",
	} {
		f.Add([]byte(s))
	}
	decoders := []func() validator{
		func() validator { return &RegisterRequest{} },
		func() validator { return &LoginRequest{} },
		func() validator { return &RefreshRequest{} },
		func() validator { return &LogoutRequest{} },
		func() validator { return &PasswordRequest{} },
		func() validator { return &TOTPConfirmRequest{} },
		func() validator { return &RoleRequest{} },
		func() validator { return &APIKeyRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range decoders {
			v := d()
			err := decodeBody(body, v)
			if err == nil {
				continue
			}
			p := problemFor(err)
			if p.Status != 400 && p.Status != 422 {
				t.Fatalf("decode %T of %q: status %d (%v); want 400 or 422", v, body, p.Status, err)
			}
			if p.Status == 422 && len(p.Errors) == 0 {
				t.Fatalf("decode %T of %q: 422 without naming a field", v, body)
			}
		}
	})
}
