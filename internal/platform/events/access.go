package events

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// Grant describes what one service identity may do on the event bus: publish
// its own stream's events, and read the streams it consumes through its own
// durable consumers. Permissions turns it into NATS subject permissions, the
// same for the embedded server and for the configuration of an external one
// (deploy/README.md), so that whoever can reach NATS can no longer forge an
// event of a stream it does not own or steal another service's deliveries.
type Grant struct {
	// Identity is the NATS user (or nkey name) of the service, for example
	// "customer"; it also names the service's inbox prefix (InboxPrefix).
	Identity string
	// Producer is the stream the identity owns ("" for a pure consumer such
	// as the authorization sync): it may publish prefix.<Producer>.> and
	// create and update that one stream.
	Producer string
	// Consumers are the durable consumers the identity runs.
	Consumers []ConsumerGrant
	// Listen are the producers whose event subjects the identity may
	// subscribe to as plain NATS messages, without a JetStream consumer:
	// at most once, nothing to acknowledge, nothing it may publish. The
	// BFF listens this way for the pages' live state, which it reloads
	// after any gap rather than replaying events.
	Listen []string
	// Admin grants the whole JetStream API of the account. Only the wiring
	// of `up` uses it, for the identity that creates every stream and checks
	// the server; no service connects with it.
	Admin bool
}

// ConsumerGrant lets an identity run one durable consumer on the streams of
// some producers.
type ConsumerGrant struct {
	// Durable is the durable consumer name (ConsumerConfig.Name).
	Durable string
	// Producers are the streams it reads, by producer name.
	Producers []string
}

// Permissions are the subjects an identity may publish and subscribe to;
// anything else the server refuses.
type Permissions struct {
	// Publish lists the subjects the identity may publish on (events and
	// JetStream API requests).
	Publish []string
	// Subscribe lists the subjects it may subscribe to (its inbox).
	Subscribe []string
}

// InboxPrefix returns the inbox prefix of identity: the replies of
// JetStream (publish acknowledgements, pulled messages) go to subjects under
// it, and only that identity may subscribe to them, so no service can read
// another's deliveries. Connect uses it when given Credentials.Identity.
func InboxPrefix(identity string) string { return "_INBOX_" + identity }

// Permissions returns the NATS permissions of g for streams under prefix
// (DefaultPrefix when empty). The JetStream API subjects are named one by
// one, per stream and durable: a service can create, read, pull from, ack
// and delete only its own durable consumers on the streams it reads, and
// publish, create and update only its own stream.
func (g Grant) Permissions(prefix string) Permissions {
	var p Permissions
	p.Subscribe = []string{InboxPrefix(g.Identity) + ".>"}
	if g.Admin {
		p.Publish = []string{"$JS.API.>", prefixOr(prefix) + ".>"}
		return p
	}
	for _, producer := range g.Listen {
		p.Subscribe = append(p.Subscribe, prefixOr(prefix)+"."+producer+".>")
	}
	p.Publish = []string{"$JS.API.INFO"}
	if g.Producer != "" {
		stream := StreamName(prefix, g.Producer)
		p.Publish = append(p.Publish,
			prefixOr(prefix)+"."+g.Producer+".>",
			"$JS.API.STREAM.CREATE."+stream,
			"$JS.API.STREAM.UPDATE."+stream,
			"$JS.API.STREAM.INFO."+stream,
		)
	}
	for _, c := range g.Consumers {
		for _, producer := range c.Producers {
			stream := StreamName(prefix, producer)
			sd := stream + "." + c.Durable
			p.Publish = append(p.Publish,
				"$JS.API.STREAM.INFO."+stream,
				"$JS.API.CONSUMER.CREATE."+sd,
				"$JS.API.CONSUMER.CREATE."+sd+".>", // the form with a filter subject
				"$JS.API.CONSUMER.DURABLE.CREATE."+sd,
				"$JS.API.CONSUMER.INFO."+sd,
				"$JS.API.CONSUMER.MSG.NEXT."+sd,
				"$JS.API.CONSUMER.DELETE."+sd, // Reset, for a rebuild
				"$JS.ACK."+sd+".>",            // acks, naks, in-progress
				"$JS.ACK.*.*."+sd+".>",        // the same with domain and account hash
			)
		}
	}
	slices.Sort(p.Publish)
	p.Publish = slices.Compact(p.Publish)
	return p
}

// NATSConfigUsers renders grants as the users of a nats-server configuration
// file's authorization block, the password of each taken from the
// environment variable passwordVar(identity) ($NAME is expanded by
// nats-server), so deployments configure an external server with exactly
// the permissions the embedded one enforces.
func NATSConfigUsers(prefix string, grants []Grant, passwordVar func(identity string) string) string {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, g := range grants {
		p := g.Permissions(prefix)
		fmt.Fprintf(&b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", g.Identity, passwordVar(g.Identity))
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", quoteList(p.Publish))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", quoteList(p.Subscribe))
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// RandomPassword returns a fresh random password for an embedded server's
// identity (32 bytes of entropy, URL-safe).
func RandomPassword() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("events: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
