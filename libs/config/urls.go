package config

import (
	"net/url"
	"strconv"
	"strings"
)

// Broker and database URLs may carry credentials (a password, a NATS token
// as the user name, a password query parameter). They are read as secrets:
// an error about one shows at most its redacted form (RedactURL), never the
// value as given, and Common.Secrets lists the credentials so logs and
// errors can be scrubbed.

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
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				r.fail(key, "entry %d (%s): port out of range", i+1, RedactURL(entry))
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

// Secrets lists every secret in c: the admin token, and the credentials
// inside the broker and database URLs (as given and as URL-decoded), each at
// least 4 bytes long (shorter ones would scrub innocent text and cannot be
// told apart anyway).
func (c Common) Secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 && !contains(out, s) {
			out = append(out, s)
		}
	}
	add(c.AdminToken)
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
		// The raw userinfo, whether or not the rest parses; a lone user
		// name is a secret in NATS (a token), not in PostgreSQL.
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			info := raw[:at]
			if i := strings.Index(info, "://"); i >= 0 {
				info = info[i+3:]
			}
			if i := strings.IndexByte(info, ':'); i >= 0 {
				add(info[i+1:])
			} else if !postgres {
				add(info)
			}
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			add(raw) // unparseable: the whole value
			continue
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p)
			} else if !postgres {
				add(u.User.Username())
			}
		}
		add(u.Query().Get("password"))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Redact replaces every secret in s with xxxxx.
func Redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}
