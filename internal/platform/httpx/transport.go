package httpx

import "net/http"

// PooledTransport returns a transport for a client that sends many
// requests in parallel to the same few hosts (a strategy's fact reads, the
// OpenFGA client): a clone of http.DefaultTransport keeping up to perHost
// idle connections per host. The default keeps two, so a list page's
// parallel calls to one host (five OpenFGA Reads and a Check, or the
// Customer Service's subject and location calls of two requests) closed
// every connection beyond the second after each round and dialled it again
// at the next, paying a TCP handshake and leaving sockets in TIME_WAIT.
//
// When http.DefaultTransport is not an *http.Transport (a process that
// wrapped it, such as the IAM's internal URL rewriting) it is returned as
// is: its pooling is its own.
func PooledTransport(perHost int) http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	c := t.Clone()
	c.MaxIdleConnsPerHost = perHost
	if c.MaxIdleConns != 0 && c.MaxIdleConns < 4*perHost {
		c.MaxIdleConns = 4 * perHost
	}
	return c
}
