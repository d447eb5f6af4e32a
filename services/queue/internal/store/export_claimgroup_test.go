package store

// SetReportPiece sets the size of the pieces g applies reports in
// (reportsPerGroup), for tests with few messages.
func (g *ClaimGroup) SetReportPiece(n int) { g.chunk = n }
