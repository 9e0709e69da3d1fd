package authz

import (
	"context"
	"sync"

	"github.com/realguardio/realguardio/internal/policy"
)

type memoKey struct{}

// memo holds the subject facts one request has read already.
type memo struct {
	mu      sync.Mutex
	user    string
	subject *policy.Subject
	// factsUser and facts are a strategy's own form of the caller's
	// facts (RememberFacts), for a strategy whose facts are not a
	// policy.Subject.
	factsUser string
	facts     any
}

// WithRequestMemo returns a context in which the strategy calls of one
// request may share the subject facts they read: a list page asks Scope,
// then Filter for the page's actions, and a strategy that fetches the
// caller's facts remotely needs them only once. The memo lives as long as
// the request, so nothing is ever served staler than the request itself.
func WithRequestMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{})
}

// RememberSubject records userID's subject facts in ctx's request memo (a
// no-op without one).
func RememberSubject(ctx context.Context, userID string, s policy.Subject) {
	if m, ok := ctx.Value(memoKey{}).(*memo); ok {
		m.mu.Lock()
		m.user, m.subject = userID, &s
		m.mu.Unlock()
	}
}

// RememberedSubject returns the subject facts of userID recorded earlier in
// the same request, if any.
func RememberedSubject(ctx context.Context, userID string) (policy.Subject, bool) {
	m, ok := ctx.Value(memoKey{}).(*memo)
	if !ok {
		return policy.Subject{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.subject == nil || m.user != userID {
		return policy.Subject{}, false
	}
	return *m.subject, true
}

// RememberFacts records userID's facts in a strategy's own form in ctx's
// request memo (a no-op without one): the delegate strategy's grants read
// from OpenFGA, which a list page's Scope reads and its Filter needs again.
func RememberFacts(ctx context.Context, userID string, facts any) {
	if m, ok := ctx.Value(memoKey{}).(*memo); ok {
		m.mu.Lock()
		m.factsUser, m.facts = userID, facts
		m.mu.Unlock()
	}
}

// RememberedFacts returns the facts of userID recorded by RememberFacts
// earlier in the same request, if any.
func RememberedFacts(ctx context.Context, userID string) (any, bool) {
	m, ok := ctx.Value(memoKey{}).(*memo)
	if !ok {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.facts == nil || m.factsUser != userID {
		return nil, false
	}
	return m.facts, true
}
