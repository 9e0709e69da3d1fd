package iam

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// keyBits is the RSA modulus size; 2048 is what RS256 verifiers expect and
// keeps signing fast enough for the client-credentials throughput target.
const keyBits = 2048

// signingKey is one RSA key with its schedule and cached signers.
type signingKey struct {
	id          string
	private     *rsa.PrivateKey
	createdAt   time.Time
	activatesAt time.Time
	// retiresAt is the activation instant of the next key, zero while this
	// is the newest key.
	retiresAt time.Time
	// atSigner signs access tokens with typ "at+jwt" (RFC 9068).
	atSigner jose.Signer
}

// keyManager holds the signing keys in memory and decides which one signs
// and which are published. The schedule lives in the database, so every
// instance reaches the same decision; the cache is reloaded after a
// rotation here and periodically by Run for rotations done elsewhere.
type keyManager struct {
	store *store
	now   func() time.Time
	// publishAhead is how long a new key is published before it signs, so
	// that resource servers have fetched it before they meet a token it
	// signed.
	publishAhead time.Duration
	// keepAfter is how long a retired key stays published: the longest
	// lifetime of a token it may have signed.
	keepAfter time.Duration
	interval  time.Duration
	// sealer encrypts the private keys at rest; nil stores them plaintext.
	sealer *keySealer

	mu   sync.RWMutex
	keys []*signingKey // ordered by activation
}

func (m *keyManager) load(ctx context.Context) error {
	rows, err := m.store.keys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	m.mu.RLock()
	cached := map[string]*signingKey{}
	for _, k := range m.keys {
		cached[k.id] = k
	}
	m.mu.RUnlock()
	keys := make([]*signingKey, 0, len(rows))
	for _, r := range rows {
		if k, ok := cached[r.ID]; ok {
			keys = append(keys, &signingKey{id: k.id, private: k.private, createdAt: k.createdAt, activatesAt: k.activatesAt, atSigner: k.atSigner})
			continue
		}
		pemText, err := m.sealer.open(r.ID, r.PrivatePEM)
		if err != nil {
			return err
		}
		r.PrivatePEM = pemText
		k, err := parseKey(r)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	for i := 0; i+1 < len(keys); i++ {
		keys[i].retiresAt = keys[i+1].activatesAt
	}
	m.mu.Lock()
	m.keys = keys
	m.mu.Unlock()
	return nil
}

func parseKey(r storedKey) (*signingKey, error) {
	block, _ := pem.Decode([]byte(r.PrivatePEM))
	if block == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", r.ID)
	}
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: r.ID, Algorithm: string(jose.RS256), Use: "sig"}},
		(&jose.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", r.ID, err)
	}
	return &signingKey{id: r.ID, private: priv, createdAt: r.CreatedAt, activatesAt: r.ActivatesAt, atSigner: signer}, nil
}

// ensure seals every stored key under the current key-encryption key,
// and creates the first key, active at once, when the database has none.
func (m *keyManager) ensure(ctx context.Context) error {
	if err := m.reseal(ctx); err != nil {
		return err
	}
	if err := m.load(ctx); err != nil {
		return err
	}
	m.mu.RLock()
	n := len(m.keys)
	m.mu.RUnlock()
	if n > 0 {
		return nil
	}
	return m.rotate(ctx, 0, false)
}

// rotate adds a new key published now and signing after ahead. When
// onlyIfDue is set it does nothing unless the newest key is older than the
// rotation interval, checked inside the transaction so that two instances
// do not both rotate.
func (m *keyManager) rotate(ctx context.Context, ahead time.Duration, onlyIfDue bool) error {
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	now := m.now()
	id := uuid.NewString()
	sealed, err := m.sealer.seal(id, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})))
	if err != nil {
		return fmt.Errorf("seal signing key: %w", err)
	}
	k := storedKey{
		ID:          id,
		PrivatePEM:  sealed,
		CreatedAt:   now,
		ActivatesAt: now.Add(ahead),
	}
	err = m.store.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if onlyIfDue {
			var newest int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(created_at), 0) FROM iam_signing_keys`).Scan(&newest); err != nil {
				return err
			}
			if newest != 0 && now.Sub(sqldb.FromMicros(newest)) < m.interval {
				return errNotDue
			}
		}
		return m.store.insertKey(ctx, tx, k)
	})
	if errors.Is(err, errNotDue) {
		return m.load(ctx)
	}
	if err != nil {
		return fmt.Errorf("store signing key: %w", err)
	}
	return m.load(ctx)
}

var errNotDue = errors.New("rotation not due")

// current returns the key that signs now: the newest key whose activation
// has come.
func (m *keyManager) current() (*signingKey, error) {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := len(m.keys) - 1; i >= 0; i-- {
		if !m.keys[i].activatesAt.After(now) {
			return m.keys[i], nil
		}
	}
	return nil, errors.New("no active signing key")
}

// published returns the keys the JWKS lists now: every key that is not yet
// retired, or retired less than keepAfter ago.
func (m *keyManager) published() []*signingKey {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*signingKey, 0, len(m.keys))
	for _, k := range m.keys {
		if k.retiresAt.IsZero() || now.Before(k.retiresAt.Add(m.keepAfter)) {
			out = append(out, k)
		}
	}
	return out
}

// byID returns a published key, for verifying the IAM's own tokens.
func (m *keyManager) byID(kid string) *signingKey {
	for _, k := range m.published() {
		if k.id == kid {
			return k
		}
	}
	return nil
}

// dropExpired deletes keys no longer published; every token they signed
// has expired.
func (m *keyManager) dropExpired(ctx context.Context) error {
	now := m.now()
	m.mu.RLock()
	var gone []string
	for _, k := range m.keys {
		if !k.retiresAt.IsZero() && !now.Before(k.retiresAt.Add(m.keepAfter)) {
			gone = append(gone, k.id)
		}
	}
	m.mu.RUnlock()
	for _, id := range gone {
		if err := m.store.deleteKey(ctx, id); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		return m.load(ctx)
	}
	return nil
}

// opSigningKey adapts a key to op.SigningKey (for ID tokens).
type opSigningKey struct{ k *signingKey }

func (s opSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (s opSigningKey) Key() any                                    { return s.k.private }
func (s opSigningKey) ID() string                                  { return s.k.id }

// opPublicKey adapts a key to op.Key (for the JWKS).
type opPublicKey struct{ k *signingKey }

func (p opPublicKey) ID() string                         { return p.k.id }
func (p opPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p opPublicKey) Use() string                        { return "sig" }
func (p opPublicKey) Key() any                           { return &p.k.private.PublicKey }
func (m *keyManager) opKeys() []op.Key {
	pub := m.published()
	out := make([]op.Key, len(pub))
	for i, k := range pub {
		out[i] = opPublicKey{k}
	}
	return out
}

// RotateSigningKeys adds a new signing key to the IAM database behind db
// and returns its id and the instant it starts signing: publishAhead from
// now, so that resource servers see it in the JWKS before any token carries
// it. It is rotation "on command" for operators (`realguardio rotate-keys`);
// a running IAM Service picks the key up at its next minute tick, and keeps
// the key it replaces published until every token that key signed has
// expired. keyEncryptionKeys are those of Config.KeyEncryptionKeys; the new
// key is sealed under the first.
func RotateSigningKeys(ctx context.Context, db *sqldb.DB, publishAhead time.Duration, keyEncryptionKeys [][]byte) (id string, activatesAt time.Time, err error) {
	if publishAhead < 0 {
		return "", time.Time{}, errors.New("rotate signing keys: the publish-ahead time must not be negative")
	}
	if err := db.Migrate(ctx, Migrations); err != nil {
		return "", time.Time{}, fmt.Errorf("rotate signing keys: %w", err)
	}
	sealer, err := newKeySealer(keyEncryptionKeys)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("rotate signing keys: %w", err)
	}
	m := &keyManager{store: &store{db: db, sealer: sealer}, now: time.Now, sealer: sealer}
	if err := m.reseal(ctx); err != nil {
		return "", time.Time{}, fmt.Errorf("rotate signing keys: %w", err)
	}
	// The instance secrets follow the KEK too, so that the old KEK can be
	// dropped after this command as well as after a start.
	if err := m.store.resealSecrets(ctx); err != nil {
		return "", time.Time{}, fmt.Errorf("rotate signing keys: %w", err)
	}
	if err := m.rotate(ctx, publishAhead, false); err != nil {
		return "", time.Time{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	newest := m.keys[len(m.keys)-1]
	return newest.id, newest.activatesAt, nil
}
