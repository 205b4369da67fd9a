package main

import (
	"errors"

	"github.com/patchbay/patchbay/server/sso"
	"github.com/spf13/pflag"
)

// oidcFlags are serve's single sign-on flags.
type oidcFlags struct {
	issuer, clientID, secretFile, groupsClaim, roleMap, siteMap, ca, redirectURL string
	domains, groups, scopes                                                      []string
	allowHTTP                                                                    bool
}

func (o *oidcFlags) register(f *pflag.FlagSet) {
	f.StringVar(&o.issuer, "oidc-issuer", "", "single sign-on: the OpenID provider's issuer URL, exactly as its discovery document states it (turns single sign-on on)")
	f.StringVar(&o.clientID, "oidc-client-id", "", "single sign-on: the client ID the provider gave Patchbay")
	f.StringVar(&o.secretFile, "oidc-client-secret-file", "", "single sign-on: file whose first line is the client secret (kept out of the process list)")
	f.StringSliceVar(&o.domains, "oidc-allowed-domains", nil, "single sign-on: admit only verified email addresses in these domains (comma-separated)")
	f.StringSliceVar(&o.groups, "oidc-allowed-groups", nil, "single sign-on: admit only members of these provider groups (comma-separated)")
	f.StringVar(&o.groupsClaim, "oidc-groups-claim", sso.DefaultGroupsClaim, "single sign-on: the ID token or userinfo claim that lists a person's groups")
	f.StringVar(&o.roleMap, "oidc-role-map", "", "single sign-on: provider group to Patchbay role, e.g. 'helpdesk=technician,it-admins=admin'; the highest role of a person's groups wins, no mapped group: refused")
	f.StringVar(&o.siteMap, "oidc-site-map", "", "single sign-on: provider group to the sites it reaches, e.g. 'acme-helpdesk=Acme/HQ,acme-helpdesk=Acme/Lyon,msp-staff=all'; set at every sign-in (a person in no mapped group reaches no site and is refused unless admin); unset: first sign-in grants the default site")
	f.StringSliceVar(&o.scopes, "oidc-scopes", nil, "single sign-on: scopes to ask for (default openid,email,profile,groups; drop groups for providers that refuse it)")
	f.StringVar(&o.ca, "oidc-ca", "", "single sign-on: PEM file of CAs to trust for the provider besides the system's (SSL_CERT_FILE also works)")
	f.StringVar(&o.redirectURL, "oidc-redirect-url", "", "single sign-on: the redirect URI registered at the provider (default https://<host the browser used>/console/oidc/callback)")
	f.BoolVar(&o.allowHTTP, "oidc-allow-http", false, "single sign-on: accept a plain http:// issuer (a lab provider on loopback only; tokens would cross the network in clear)")
}

// config returns the sso configuration, nil when --oidc-issuer is not set.
func (o *oidcFlags) config() (*sso.Config, error) {
	if o.issuer == "" {
		if o.clientID != "" || o.secretFile != "" || o.roleMap != "" || o.siteMap != "" || len(o.domains)+len(o.groups) > 0 {
			return nil, errors.New("--oidc-* flags given without --oidc-issuer: add the provider's issuer URL to turn single sign-on on")
		}
		return nil, nil
	}
	cfg := &sso.Config{Issuer: o.issuer, ClientID: o.clientID, AllowedDomains: o.domains, AllowedGroups: o.groups,
		GroupsClaim: o.groupsClaim, Scopes: o.scopes, CAFile: o.ca, RedirectURL: o.redirectURL, AllowHTTP: o.allowHTTP}
	if o.secretFile != "" {
		s, err := sso.ReadSecretFile(o.secretFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret = s
	}
	m, err := sso.ParseRoleMap(o.roleMap)
	if err != nil {
		return nil, err
	}
	cfg.RoleMap = m
	if cfg.SiteMap, err = sso.ParseSiteMap(o.siteMap); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}
