package httpapi

import (
	"strconv"

	"github.com/apitosms/apitosms/libs/timestamp"
	"github.com/apitosms/apitosms/services/releases/internal/store"
)

// activeJSON is GET /api/app-version (contract §5, field order of the
// original documentation, plus sha256).
type activeJSON struct {
	Version      string `json:"version"`
	VersionCode  int64  `json:"versionCode"`
	DownloadURL  string `json:"downloadUrl"`
	ReleaseNotes string `json:"releaseNotes"`
	FileSize     int64  `json:"fileSize"`
	PublishedAt  string `json:"publishedAt"`
	SHA256       string `json:"sha256"`
}

// versionJSON is one item of GET /api/app-versions.
type versionJSON struct {
	Version      string `json:"version"`
	VersionCode  int64  `json:"versionCode"`
	IsActive     bool   `json:"isActive"`
	DownloadURL  string `json:"downloadUrl"`
	ReleaseNotes string `json:"releaseNotes"`
	FileSize     int64  `json:"fileSize"`
	PublishedAt  string `json:"publishedAt"`
	SHA256       string `json:"sha256"`
}

// adminVersionJSON is a version as the operator API shows it.
type adminVersionJSON struct {
	versionJSON
	Downloads int64 `json:"downloads"`
}

type versionsJSON[T any] struct {
	Versions []T `json:"versions"`
}

func (h *Handler) active(v store.Version) activeJSON {
	return activeJSON{
		Version: v.Version, VersionCode: v.VersionCode,
		DownloadURL:  h.publicURL + "/download/app.apk",
		ReleaseNotes: v.ReleaseNotes, FileSize: v.FileSize,
		PublishedAt: timestamp.Format(v.PublishedAt), SHA256: v.SHA256,
	}
}

func (h *Handler) version(v store.Version) versionJSON {
	return versionJSON{
		Version: v.Version, VersionCode: v.VersionCode, IsActive: v.IsActive,
		DownloadURL:  h.publicURL + "/api/download/" + strconv.FormatInt(v.VersionCode, 10),
		ReleaseNotes: v.ReleaseNotes, FileSize: v.FileSize,
		PublishedAt: timestamp.Format(v.PublishedAt), SHA256: v.SHA256,
	}
}

func (h *Handler) adminVersion(v store.Version) adminVersionJSON {
	return adminVersionJSON{versionJSON: h.version(v), Downloads: v.Downloads}
}

// jsonType is the Content-Type of every JSON answer (contract conventions).
const jsonType = "application/json; charset=utf-8"
