// Package buildinfo says which build of apitosms is running. `make build`
// stamps the version and commit with the linker:
//
//	-X github.com/apitosms/apitosms/libs/buildinfo.version=<git describe>
//	-X github.com/apitosms/apitosms/libs/buildinfo.commit=<commit hash>
//
// An unstamped build (go build, go run, go install) falls back to what the
// Go toolchain recorded in the binary: the module version, or the VCS
// revision and whether the tree was modified; failing both, "dev".
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set by the linker (-ldflags -X); empty when not stamped.
var (
	version string
	commit  string
)

type info struct{ version, commit string }

var resolved = sync.OnceValue(func() info {
	return resolve(version, commit, debug.ReadBuildInfo)
})

// resolve fills what the linker left empty from the toolchain's build info.
func resolve(v, c string, read func() (*debug.BuildInfo, bool)) info {
	if v != "" && c != "" {
		return info{v, c}
	}
	var rev, modified string
	var modVersion string
	if bi, ok := read(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			modVersion = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if c == "" {
		c = rev
	}
	if v == "" {
		switch {
		case modVersion != "":
			v = modVersion
		case rev != "":
			v = shortRev(rev)
			if modified == "true" {
				v += "-dirty"
			}
		default:
			v = "dev"
		}
	}
	if c == "" {
		c = "unknown"
	}
	return info{v, c}
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// Version is the release this binary was built from: `git describe --tags
// --always --dirty` when built by make, else the toolchain's record, else "dev".
func Version() string { return resolved().version }

// Commit is the full VCS revision, or "unknown".
func Commit() string { return resolved().commit }

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// String is the one-line form `apitosms version` prints.
func String() string {
	return "apitosms " + Version() + " (commit " + Commit() + ", " + GoVersion() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
