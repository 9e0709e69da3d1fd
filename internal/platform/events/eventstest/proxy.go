package eventstest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of a NATS server: a client
// connected through it can be cut off from NATS (Cut) while everything
// else it uses keeps working, and connected again (Restore) on the same
// address, as after a network partition heals.
type Proxy struct {
	t      testing.TB
	target string
	addr   string
	url    url.URL

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// StartProxy listens on a free loopback port and forwards every connection
// to the server of natsURL; it is closed when the test ends.
func StartProxy(t testing.TB, natsURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(natsURL)
	if err != nil || u.Host == "" {
		t.Fatalf("proxy: not a NATS URL: %q", natsURL)
	}
	p := &Proxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p.addr = ln.Addr().String()
	u.Host = p.addr
	p.url = *u
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

// URL is the NATS URL of the proxy (the server's, with the proxy's
// address).
func (p *Proxy) URL() string { return p.url.String() }

// Cut closes the listener and every connection through the proxy, so the
// clients behind it see their connection end and cannot connect again.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore listens again on the proxy's address after Cut.
func (p *Proxy) Restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Cut
			}
			go p.forward(c)
		}
	}()
}

// forward copies c to and from a new connection to the target until either
// side ends or Cut closes both.
func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
