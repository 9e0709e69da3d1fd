package iam

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix starts a signing key sealed with a key-encryption key; a
// value without it is a plaintext PEM of an earlier version.
const sealedPrefix = "rgkek1:"

// KeyEncryptionKeySize is the size of a key-encryption key: AES-256.
const KeyEncryptionKeySize = 32

// keySealer encrypts the signing keys at rest with AES-256-GCM under a
// key-encryption key (KEK) that is not in the database, so a copied
// database alone mints nothing. The first KEK seals; every KEK opens, which
// is how a KEK is rotated: start with "new,old", and every key is resealed
// under the new one at start; then drop the old.
type keySealer struct {
	keks []kek
}

type kek struct {
	id   string
	aead cipher.AEAD
}

func newKeySealer(keys [][]byte) (*keySealer, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	s := &keySealer{}
	for i, k := range keys {
		if len(k) != KeyEncryptionKeySize {
			return nil, fmt.Errorf("key-encryption key %d is %d bytes, want %d", i+1, len(k), KeyEncryptionKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.keks = append(s.keks, kek{id: kekID(k), aead: aead})
	}
	return s, nil
}

// kekID names a KEK in a sealed value without revealing it, so opening
// picks the right KEK and a missing one is named.
func kekID(k []byte) string {
	sum := sha256.Sum256(append([]byte("realguardio key-encryption key id\x00"), k...))
	return hex.EncodeToString(sum[:6])
}

// seal encrypts the PEM of signing key id under the first KEK; id is the
// additional data, so a sealed value cannot be moved to another key's row.
func (s *keySealer) seal(id, pem string) (string, error) {
	return s.sealValue("signing-key:"+id, pem)
}

// sealValue encrypts plaintext under the first KEK with the additional
// data ad, which names the row the value belongs to; without a KEK it is
// stored as it is.
func (s *keySealer) sealValue(ad, plaintext string) (string, error) {
	if s == nil {
		return plaintext, nil
	}
	k := s.keks[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(ad))
	return sealedPrefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(ct), nil
}

// open returns the PEM of a stored signing key, sealed or (from an
// earlier version) plaintext.
func (s *keySealer) open(id, stored string) (string, error) {
	return s.openValue("signing-key:"+id, "signing key "+id, stored)
}

// openValue returns the plaintext of a value stored by sealValue with the
// additional data ad (or stored plaintext by an earlier version); what
// names the value in errors.
func (s *keySealer) openValue(ad, what, stored string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s == nil {
		return "", fmt.Errorf("%s is encrypted, and no key-encryption key is configured (--key-encryption-key)", what)
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%s: malformed sealed value", what)
	}
	for _, k := range s.keks {
		if k.id != kid {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil || len(ct) < k.aead.NonceSize() {
			return "", fmt.Errorf("%s: malformed sealed value", what)
		}
		pt, err := k.aead.Open(nil, ct[:k.aead.NonceSize()], ct[k.aead.NonceSize():], []byte(ad))
		if err != nil {
			return "", fmt.Errorf("%s: does not decrypt under key-encryption key %s (tampered?)", what, kid)
		}
		return string(pt), nil
	}
	return "", fmt.Errorf("%s is encrypted under key-encryption key %s, which is not configured; give it too (--key-encryption-key new,old)", what, kid)
}

// current reports whether stored is sealed under the first KEK (with no
// KEK: whether it is plaintext).
func (s *keySealer) current(stored string) bool {
	if s == nil {
		return !strings.HasPrefix(stored, sealedPrefix)
	}
	return strings.HasPrefix(stored, sealedPrefix+s.keks[0].id+":")
}

// reseal seals every stored signing key under the first KEK: plaintext
// keys of an earlier version, and keys sealed under a KEK being rotated
// out. Each row is replaced only if it still holds what was read, so
// instances starting together do not overwrite each other.
func (m *keyManager) reseal(ctx context.Context) error {
	if m.sealer == nil {
		return nil
	}
	rows, err := m.store.keys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	for _, r := range rows {
		if m.sealer.current(r.PrivatePEM) {
			continue
		}
		pem, err := m.sealer.open(r.ID, r.PrivatePEM)
		if err != nil {
			return err
		}
		sealed, err := m.sealer.seal(r.ID, pem)
		if err != nil {
			return err
		}
		if err := m.store.replaceKey(ctx, r.ID, r.PrivatePEM, sealed); err != nil {
			return fmt.Errorf("reseal signing key %s: %w", r.ID, err)
		}
	}
	return nil
}

// ParseKeyEncryptionKeys parses comma-separated base64 (standard or URL
// alphabet, padded or not) key-encryption keys of 32 bytes each, the first
// one sealing.
func ParseKeyEncryptionKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var k []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err = enc.DecodeString(part); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64", i+1)
		}
		if len(k) != KeyEncryptionKeySize {
			return nil, fmt.Errorf("key %d is %d bytes, want %d (generate one with: head -c 32 /dev/urandom | base64)", i+1, len(k), KeyEncryptionKeySize)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no key given")
	}
	return out, nil
}

// NewKeyEncryptionKey returns a new random key-encryption key, base64.
func NewKeyEncryptionKey() (string, error) {
	k := make([]byte, KeyEncryptionKeySize)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}
