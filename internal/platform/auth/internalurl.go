package auth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// InternalTransport returns a transport that sends every request for the
// IAM's public issuer URL (its scheme, host and path prefix) to internal
// instead, and every other request unchanged through base (nil means
// http.DefaultTransport).
//
// Tokens carry the public issuer (https in production, the name browsers
// use), and validation still compares iss with it exactly; but inside a
// cluster that name may not resolve, or may go out through the ingress
// and back. With this transport the discovery document, the JWKS, the
// token endpoint and the code exchange, all of which the discovery
// document names under the public issuer, are fetched from the internal
// URL, while the browser is still redirected to the public one.
func InternalTransport(issuer, internal string, base http.RoundTripper) (http.RoundTripper, error) {
	pub, err := url.Parse(strings.TrimRight(issuer, "/"))
	if err != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https") {
		return nil, errors.New("the IAM issuer URL is not an absolute http(s) URL")
	}
	in, err := url.Parse(strings.TrimRight(internal, "/"))
	if err != nil || in.Host == "" || (in.Scheme != "http" && in.Scheme != "https") {
		return nil, errors.New("the IAM internal URL is not an absolute http(s) URL")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &internalTransport{pub: pub, in: in, base: base}, nil
}

type internalTransport struct {
	pub, in *url.URL
	base    http.RoundTripper
}

// RoundTrip rewrites a request under the public issuer to the internal
// URL. The request is cloned, as a RoundTripper must not modify it.
func (t *internalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL
	if u.Scheme != t.pub.Scheme || !strings.EqualFold(u.Host, t.pub.Host) ||
		(u.Path != t.pub.Path && !strings.HasPrefix(u.Path, t.pub.Path+"/")) {
		return t.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme = t.in.Scheme
	r2.URL.Host = t.in.Host
	r2.URL.Path = t.in.Path + strings.TrimPrefix(u.Path, t.pub.Path)
	r2.URL.RawPath = ""
	r2.Host = t.in.Host
	return t.base.RoundTrip(r2)
}
