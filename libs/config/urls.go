package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Broker and database URLs may carry credentials (a password, a NATS token
// as the user name, a password query parameter). They are read as secrets:
// an error about one shows at most its redacted form (RedactURL), never the
// value as given, and Common.Redactor scrubs them from logs and errors.

const redacted = "xxxxx"

// NATSURL returns the variable as a comma-separated list of NATS server
// URLs (nats://, tls://, ws://, wss://; a bare host:port means nats://), or
// "" when unset.
func (r *Reader) NATSURL(key string) string {
	v := strings.TrimSpace(r.lookup(key, "", true))
	if v == "" {
		return ""
	}
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if !strings.Contains(entry, "://") {
			entry = "nats://" + entry
		}
		u, err := url.Parse(entry)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			r.fail(key, "entry %d is not a NATS URL (want nats://[user:password@]host:4222, several separated by commas)", i+1)
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			r.fail(key, "entry %d (%s): scheme must be nats, tls, ws or wss", i+1, RedactURL(entry))
			continue
		}
		if strings.Contains(strings.TrimPrefix(u.Host, "["+u.Hostname()+"]"), ":") {
			_, p, err := net.SplitHostPort(u.Host)
			if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 1 || n > 65535 {
				r.fail(key, "entry %d (%s): bad port", i+1, RedactURL(entry))
			}
		}
	}
	return v
}

// DatabaseURL returns the variable as a PostgreSQL URL (postgres:// or
// postgresql://), or "" when unset.
func (r *Reader) DatabaseURL(key string) string {
	v := strings.TrimSpace(r.lookup(key, "", true))
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		r.fail(key, "not a URL (want postgres://user:password@host:5432/database)")
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		r.fail(key, "%s: must start with postgres:// (unset it to use SQLite in the data dir)", RedactURL(v))
	case u.Host == "" && u.Query().Get("host") == "":
		r.fail(key, "%s: no host (want postgres://user:password@host:5432/database)", RedactURL(v))
	}
	return v
}

// PublicURL returns the variable as an absolute http(s) URL without a
// trailing slash, or def when unset.
func (r *Reader) PublicURL(key, def string) string {
	v := strings.TrimSpace(r.lookup(key, def, false))
	if v == "" {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		r.fail(key, "%s is not an absolute http:// or https:// URL without credentials (e.g. https://sms.example.com)", RedactURL(v))
		return def
	}
	return strings.TrimRight(v, "/")
}

// RedactURL returns s with its credentials replaced by xxxxx: the password,
// a lone user name of a NATS URL (a token), and a password query parameter.
// What does not parse as a URL is replaced whole.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		} else if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			u.User = url.User(redacted)
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redacted)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Redactor replaces the credentials of a configuration with xxxxx in any
// text: the admin token wherever it appears, and the credentials of the
// broker and database URLs in the places a URL holds them (":password@",
// a NATS token as "token@", "password=..."), so a library error quoting a
// URL is scrubbed while ordinary words that happen to equal a weak password
// are left alone. A URL that does not parse is replaced whole.
type Redactor struct {
	r     *strings.Replacer
	pairs int
}

// Redactor returns the redactor of c's secrets.
func (c Common) Redactor() *Redactor {
	var pairs []string
	add := func(old, new string) {
		for i := 0; i < len(pairs); i += 2 {
			if pairs[i] == old {
				return
			}
		}
		pairs = append(pairs, old, new)
	}
	if c.AdminToken != "" {
		add(c.AdminToken, redacted)
	}
	urls := []string{c.DatabaseURL}
	if c.NATSURL != "" {
		urls = append(urls, strings.Split(c.NATSURL, ",")...)
	}
	for _, raw := range urls {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		postgres := strings.HasPrefix(raw, "postgres")
		// The userinfo as written, whether or not the rest parses; a lone
		// user name is a secret in NATS (a token), not in PostgreSQL.
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			info := raw[:at]
			if i := strings.Index(info, "://"); i >= 0 {
				info = info[i+3:]
			}
			if i := strings.IndexByte(info, ':'); i >= 0 {
				add(":"+info[i+1:]+"@", ":"+redacted+"@")
			} else if !postgres && info != "" {
				add(info+"@", redacted+"@")
			}
		}
		full := raw
		if !strings.Contains(full, "://") {
			full = "nats://" + full
		}
		u, err := url.Parse(full)
		if err != nil {
			add(raw, redacted) // unparseable: the whole value
			continue
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				add(":"+p+"@", ":"+redacted+"@")
			} else if !ok && !postgres && u.User.Username() != "" {
				add(u.User.Username()+"@", redacted+"@")
			}
		}
		if q := u.Query(); q.Get("password") != "" {
			add("password="+q.Get("password"), "password="+redacted)
			add("password="+url.QueryEscape(q.Get("password")), "password="+redacted)
		}
	}
	return &Redactor{r: strings.NewReplacer(pairs...), pairs: len(pairs) / 2}
}

// Empty reports whether there is nothing to redact.
func (r *Redactor) Empty() bool { return r == nil || r.pairs == 0 }

// Redact returns s with every credential replaced by xxxxx.
func (r *Redactor) Redact(s string) string {
	if r.Empty() {
		return s
	}
	return r.r.Replace(s)
}
