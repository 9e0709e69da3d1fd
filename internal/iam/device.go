package iam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// deviceCookiePrefix starts the name of every device cookie; the rest of
// the name is derived from the account (see deviceCookies.name).
const deviceCookiePrefix = "rg_device_"

// deviceCookies issues and checks OWASP device cookies: a browser that
// logged in to an account gets a cookie, signed by the IAM, that names the
// account and a random nonce. A later login to that account presenting the
// cookie is counted in the nonce's own throttle bucket (see throttle), so a
// stranger guessing the account's password cannot lock the user out of a
// browser they used before. The key is an instance secret in the database,
// so every instance accepts the cookies of the others.
type deviceCookies struct {
	key      []byte
	lifetime time.Duration
	secure   bool
	now      func() time.Time
}

// name is the cookie's name for account: one cookie per account a browser
// logged in to, named by a MAC of the account so the name does not reveal
// it.
func (d *deviceCookies) name(account string) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte("device-name\x00" + account))
	return deviceCookiePrefix + hex.EncodeToString(m.Sum(nil)[:8])
}

func (d *deviceCookies) mac(account, nonce, issued string) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte("device\x00" + account + "\x00" + nonce + "\x00" + issued))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// nonce returns the nonce of the request's valid, unexpired device cookie
// for account, or "" when it has none.
func (d *deviceCookies) nonce(r *http.Request, account string) string {
	c, err := r.Cookie(d.name(account))
	if err != nil || len(c.Value) > 256 {
		return ""
	}
	nonce, rest, ok1 := strings.Cut(c.Value, ".")
	issued, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || nonce == "" {
		return ""
	}
	if !hmac.Equal([]byte(sig), []byte(d.mac(account, nonce, issued))) {
		return ""
	}
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return ""
	}
	// The cookie's Max-Age is the browser's business; the expiry that
	// counts is the signed issue time.
	if age := d.now().Sub(time.Unix(at, 0)); age < 0 || age >= d.lifetime {
		return ""
	}
	return nonce
}

// issue sets a new device cookie for account: after every successful
// login, so the nonce a stranger may have seen in a failed attempt's
// bucket changes too.
func (d *deviceCookies) issue(w http.ResponseWriter, account string) {
	nonce := randomToken(16)
	issued := strconv.FormatInt(d.now().Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name: d.name(account), Value: nonce + "." + issued + "." + d.mac(account, nonce, issued),
		Path: loginPath, HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode,
		MaxAge: int(d.lifetime / time.Second),
	})
}

// clientAddr is the address of the client a request comes from. It is the
// connection's peer unless that peer is a trusted proxy
// (Config.TrustedProxies): then X-Forwarded-For is read from the right,
// each entry written by the proxy before it, and the first address that is
// not itself a trusted proxy is the client. Entries to the left of it were
// written by the client and are never believed, since anyone could set
// them to escape the per-address throttle.
func (s *Service) clientAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = peer.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		addr = a.Unmap()
	}
	if !s.trustedProxy(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			ap, err := netip.ParseAddrPort(h)
			if err != nil {
				// A trusted proxy wrote something that is no address: the
				// last address known for sure is that proxy's peer.
				return addr
			}
			a = ap.Addr()
		}
		addr = a.Unmap()
		if !s.trustedProxy(addr) {
			return addr
		}
	}
	return addr
}

func (s *Service) trustedProxy(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
