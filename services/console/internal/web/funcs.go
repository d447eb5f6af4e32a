package web

import (
	"html/template"
	"time"
)

var funcs = template.FuncMap{
	"ago": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"deref": deref,
	"day": func(ts string) string { // a contract timestamp's date
		if len(ts) >= 10 {
			return ts[:10]
		}
		return ts
	},
	"inc": func(n int) int { return n + 1 },
	"dec": func(n int) int { return n - 1 },
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
}
