package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified},
			}}, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	module := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, true
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name, v, c string
		read       func() (*debug.BuildInfo, bool)
		want       info
	}{
		{"stamped", "v1.2.3-4-gabc", "abc123", none, info{"v1.2.3-4-gabc", "abc123"}},
		{"stamped wins over vcs", "v1.2.3", "abc123", vcs(rev, "true"), info{"v1.2.3", "abc123"}},
		{"vcs clean", "", "", vcs(rev, "false"), info{"0123456789ab", rev}},
		{"vcs dirty", "", "", vcs(rev, "true"), info{"0123456789ab-dirty", rev}},
		{"module version", "", "", module, info{"v1.4.0", "unknown"}},
		{"nothing", "", "", none, info{"dev", "unknown"}},
		{"version only stamped", "v2.0.0", "", vcs(rev, "false"), info{"v2.0.0", rev}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.v, tc.c, tc.read); got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	s := String()
	if !strings.HasPrefix(s, "apitosms "+Version()+" (commit "+Commit()) || !strings.Contains(s, GoVersion()) {
		t.Errorf("String() = %q", s)
	}
}
