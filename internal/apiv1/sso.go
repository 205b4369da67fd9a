package apiv1

// SSOLoginRequest redeems the one-time code that a single sign-on in the
// browser handed to the CLI's loopback listener (patchbay login --sso),
// with the PKCE verifier whose S256 challenge the CLI sent when it started
// the sign-in. The answer is a PasswordLogin: the same session token.
type SSOLoginRequest struct {
	Code     string `json:"code"`
	Verifier string `json:"verifier"`
}

// LoginOptions tells the console's login page which ways in the relay
// offers (GET /console/login-options, no session needed).
type LoginOptions struct {
	Password bool `json:"password"`
	SSO      bool `json:"sso"`
}
