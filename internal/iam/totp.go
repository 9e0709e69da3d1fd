package iam

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters (RFC 6238): what every authenticator app supports
// by default, so none needs more than the secret.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps before and after the current one a code
	// may be from: one, for the clock of a phone a little off and a code
	// typed as it changes.
	totpSkew = 1
	// totpIssuer names the account in the authenticator app.
	totpIssuer = "RealGuardIO"
)

// totpSealedPrefix starts a TOTP secret sealed under a key-encryption key,
// like sealedPrefix for signing keys; a value without it is plaintext
// (only when no key-encryption key is configured: tests).
const totpSealedPrefix = "rgtotp1:"

// newTOTPKey draws a new 160-bit secret (RFC 4226 §4's recommended length)
// for username and returns it with its otpauth:// URI.
func newTOTPKey(username string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: totpIssuer, AccountName: username, Period: totpPeriod, SecretSize: 20,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
}

// totpCodeAt is the code of base32 secret at RFC 6238 time step step.
func totpCodeAt(secret string, step int64) (string, error) {
	return hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the time step within totpSkew of now whose code is
// code, or false. Every candidate is compared, in constant time, so the
// time taken does not tell which step matched. A step not after lastStep
// is never a match: that code, or a later one, was already used.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.TrimSpace(strings.ReplaceAll(code, " ", ""))
	if len(code) != totpDigits.Length() {
		return 0, false
	}
	cur := totpStep(now)
	var found int64
	ok := false
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totpCodeAt(secret, step)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && step > lastStep && !ok {
			found, ok = step, true
		}
	}
	return found, ok
}

// sealTOTP seals a user's TOTP secret under the first key-encryption key,
// with the user id as additional data, so a sealed secret cannot be moved
// to another account's row. Without a key-encryption key it is stored as
// it is, as the signing keys are.
func sealTOTP(s *keySealer, userID, secret string) (string, error) {
	if s == nil {
		return secret, nil
	}
	k := s.keks[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.aead.Seal(nonce, nonce, []byte(secret), []byte("totp-secret:"+userID))
	return totpSealedPrefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(ct), nil
}

// openTOTP returns the secret sealTOTP sealed.
func openTOTP(s *keySealer, userID, stored string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, totpSealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s == nil {
		return "", fmt.Errorf("the TOTP secret of user %s is encrypted, and no key-encryption key is configured", userID)
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("the TOTP secret of user %s is malformed", userID)
	}
	for _, k := range s.keks {
		if k.id != kid {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil || len(ct) < k.aead.NonceSize() {
			return "", fmt.Errorf("the TOTP secret of user %s is malformed", userID)
		}
		pt, err := k.aead.Open(nil, ct[:k.aead.NonceSize()], ct[k.aead.NonceSize():], []byte("totp-secret:"+userID))
		if err != nil {
			return "", fmt.Errorf("the TOTP secret of user %s does not decrypt under key-encryption key %s", userID, kid)
		}
		return string(pt), nil
	}
	return "", fmt.Errorf("the TOTP secret of user %s is encrypted under key-encryption key %s, which is not configured", userID, kid)
}

// startTOTPEnrolment draws a new secret for u, stores it sealed as the
// pending enrolment and returns it with its otpauth:// URI, to show.
func (s *Service) startTOTPEnrolment(ctx context.Context, u *user) (secret, uri string, err error) {
	key, err := newTOTPKey(u.Username)
	if err != nil {
		return "", "", err
	}
	sealed, err := sealTOTP(s.keys.sealer, u.ID, key.Secret())
	if err != nil {
		return "", "", err
	}
	if err := s.store.setTOTPPending(ctx, u.ID, sealed, s.now()); err != nil {
		return "", "", err
	}
	return key.Secret(), totpURI(u.Username, key.Secret()), nil
}

// totpURI is the otpauth:// URI of secret for username (the Key URI
// Format every authenticator app reads), to show it as text and link.
func totpURI(username, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", totpIssuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", strconv.Itoa(totpDigits.Length()))
	v.Set("period", strconv.Itoa(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + totpIssuer + ":" + username, RawQuery: v.Encode()}
	return u.String()
}

// totpCurrent reports whether stored is sealed under the first KEK (with
// no KEK: whether it is plaintext), like keySealer.current for signing
// keys.
func totpCurrent(s *keySealer, stored string) bool {
	if s == nil {
		return !strings.HasPrefix(stored, totpSealedPrefix)
	}
	return strings.HasPrefix(stored, totpSealedPrefix+s.keks[0].id+":")
}

// resealTOTP seals every stored TOTP secret, enrolled or pending, under
// the first KEK, as keyManager.reseal does for the signing keys: secrets
// stored before a KEK was configured, and secrets sealed under a KEK
// being rotated out. It runs at start, so that after a start with
// "new,old" the old KEK may be dropped. Each value is replaced only if it
// still holds what was read, so concurrent starts and enrolments do not
// overwrite each other.
func (s *Service) resealTOTP(ctx context.Context) error {
	sealer := s.keys.sealer
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, totp_secret, totp_pending FROM iam_user_lifecycle WHERE totp_secret <> '' OR totp_pending <> ''`)
	if err != nil {
		return fmt.Errorf("load TOTP secrets: %w", err)
	}
	type row struct{ user, secret, pending string }
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.user, &r.secret, &r.pending); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range all {
		for _, col := range []struct{ name, stored string }{{"totp_secret", r.secret}, {"totp_pending", r.pending}} {
			if col.stored == "" || totpCurrent(sealer, col.stored) {
				continue
			}
			plain, err := openTOTP(sealer, r.user, col.stored)
			if err != nil {
				return err
			}
			sealed, err := sealTOTP(sealer, r.user, plain)
			if err != nil {
				return err
			}
			// col.name is one of the two constants above, never input.
			if _, err := s.db.ExecContext(ctx, `UPDATE iam_user_lifecycle SET `+col.name+` = ? WHERE user_id = ? AND `+col.name+` = ?`, sealed, r.user, col.stored); err != nil {
				return fmt.Errorf("reseal the TOTP secret of user %s: %w", r.user, err)
			}
		}
	}
	return nil
}
