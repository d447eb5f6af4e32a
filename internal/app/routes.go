package app

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// routeTable is every route template the process serves with its methods,
// filled once every route is mounted (routes do not change after start). It
// answers what fiber does not say when it refuses a method: which methods a
// path has (a 405's Allow header) and which template it matched (the 405's
// metrics label).
type routeTable []routeEntry

type routeEntry struct {
	path    string
	segs    []string // path split on "/", without the leading and trailing one
	methods []string
}

func newRouteTable(rs []fiber.Route) routeTable {
	var t routeTable
	index := map[string]int{}
	for _, r := range rs {
		if r.Path == "/" {
			continue // fiber's catch-all
		}
		i, ok := index[r.Path]
		if !ok {
			i = len(t)
			index[r.Path] = i
			t = append(t, routeEntry{path: r.Path, segs: strings.Split(strings.Trim(r.Path, "/"), "/")})
		}
		t[i].methods = append(t[i].methods, r.Method)
	}
	return t
}

// allow lists the methods of the routes that match path.
func (t routeTable) allow(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var methods []string
	for _, r := range t {
		if _, ok := matchSegments(r.segs, segs); ok {
			for _, m := range r.methods {
				if !slices.Contains(methods, m) {
					methods = append(methods, m)
				}
			}
		}
	}
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}

// template is the most specific route template path matches (fewest
// parameters), or "unmatched".
func (t routeTable) template(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	best, bestParams := "unmatched", -1
	for _, r := range t {
		if params, ok := matchSegments(r.segs, segs); ok && (bestParams < 0 || params < bestParams) {
			best, bestParams = r.path, params
		}
	}
	return best
}
