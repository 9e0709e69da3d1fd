package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// discardWriter is a minimal ResponseWriter so the benchmark measures the
// middleware, not httptest.ResponseRecorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkValidate measures full middleware validation of a token whose
// key is cached: header parsing, RS256 verification, claims decoding and
// checks, and putting the Caller in the context.
func BenchmarkValidate(b *testing.B) {
	e := newTestEnv(b)
	tok := e.good(b)
	if _, err := e.v.Validate(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	var ok bool
	h := e.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok = CallerFrom(r.Context())
	}))
	req, _ := http.NewRequest(http.MethodGet, "/customers", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		ok = false
		h.ServeHTTP(w, req)
		if !ok {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkBareRS256Verify is the floor BenchmarkValidate is compared with:
// SHA-256 of the signing input and rsa.VerifyPKCS1v15 of the same token.
func BenchmarkBareRS256Verify(b *testing.B) {
	e := newTestEnv(b)
	tok := e.good(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &testKeys().main.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateVsBare alternates one middleware validation and one bare
// verification per iteration and reports their time ratio, which stays
// meaningful on a loaded machine where the two separate benchmarks above
// run at different moments of contention.
func BenchmarkValidateVsBare(b *testing.B) {
	e := newTestEnv(b)
	tok := e.good(b)
	h := e.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req, _ := http.NewRequest(http.MethodGet, "/customers", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	pub := &testKeys().main.PublicKey
	h.ServeHTTP(w, req)
	var validate, bare time.Duration
	for b.Loop() {
		t0 := time.Now()
		h.ServeHTTP(w, req)
		t1 := time.Now()
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		validate += t1.Sub(t0)
		bare += t2.Sub(t1)
	}
	b.ReportMetric(float64(validate)/float64(bare), "validate/bare")
}
