// Package wiring holds what every service's New does first with its Deps and
// Config: check that the dependencies are there, naming the missing ones,
// and apply defaults.
package wiring

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
)

// Check returns an error naming the nil fields of the Deps struct d of
// service svc ("billing: Broker, DB missing"), or nil. Every field that can
// be nil (pointer, interface, map, slice, func, chan) is required except
// Log (see Logger) and those named in optional.
func Check(svc string, d any, optional ...string) error {
	v := reflect.ValueOf(d)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("%s: deps is a %s, not a struct", svc, v.Kind())
	}
	var missing []string
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if name == "Log" || slices.Contains(optional, name) {
			continue
		}
		switch f.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
			if f.IsNil() {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %s missing", svc, strings.Join(missing, ", "))
	}
	return nil
}

// Logger returns log (slog.Default() when nil) with the attribute
// service=svc.
func Logger(log *slog.Logger, svc string) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return log.With("service", svc)
}

// Default sets *v to def when *v is not positive (an unset int or duration
// of a Config).
func Default[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
