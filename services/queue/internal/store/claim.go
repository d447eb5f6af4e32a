package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Claimed is a message handed out by Claim.
type Claimed struct {
	Pos   int64
	Phone string
	Text  string
	High  bool // high priority (contract §12): listed before normal ones
}

// NoBound is the maxPos of a claim that may take any position.
const NoBound = math.MaxInt64

// Confirm asks that a claim be recorded until acknowledged (see Ack and
// Sweep). The zero value makes a claim final at once (Part 1 without a
// caller that confirms).
type Confirm struct {
	ID      int64     // the claim's id, from NewClaimID; 0: do not record
	Expires time.Time // when the claim is swept unless acknowledged
}

// NewClaimID returns a random positive claim id. Ids need only be unique
// among open claims (a few thousand at most): a collision, about one in
// 2^63 per pair, fails that claim's transaction rather than mixing claims.
func NewClaimID() int64 { return rand.Int64N(math.MaxInt64-1) + 1 } //nolint:gosec // G404: unique, not secret

// Claim marks up to limit of the account's oldest new messages at positions
// up to maxPos initiated and returns them oldest first, in one statement
// backed by the partial claim index. Concurrent claims, from this process or
// another replica on the same PostgreSQL database, never return the same
// message: PostgreSQL skips rows another claim has locked; SQLite serialises
// writers. With confirm.ID set and something claimed, the claim is recorded
// in the same transaction (one claims row) and its messages carry its id.
func (s *Store) Claim(ctx context.Context, accountID int64, limit int, maxPos int64, now time.Time, confirm Confirm) ([]Claimed, error) {
	var out []Claimed
	err := s.inTx(ctx, func(tx *sql.Tx, d *backlogDelta) error {
		var err error
		out, err = s.claimIn(ctx, tx, claimStmts{}, d, accountID, limit, maxPos, now, confirm)
		return err
	})
	return out, err
}

// claimSQL is the dialect's claim statement; its parameters are claimArgs.
func (s *Store) claimSQL() string {
	if s.pg {
		return claimPostgres
	}
	return claimSQLite
}

// claimArgs are the parameters of claimSQL.
func (s *Store) claimArgs(accountID int64, limit int, maxPos int64, now time.Time, confirm Confirm) []any {
	var id any // NULL: not recorded
	if confirm.ID != 0 {
		id = confirm.ID
	}
	if s.pg {
		return []any{now.UTC(), accountID, maxPos, limit, id, confirm.Expires.UnixMilli(), now.UnixMilli()}
	}
	return []any{now.UTC(), id, accountID, maxPos, now.UnixMilli(), limit}
}

// inTx runs fn in a transaction, adds what fn put in its backlogDelta to
// the backlog counts, and commits. On SQLite the transaction is
// immediate: it takes the write lock before reading, so a writer on another
// connection makes a claim wait instead of failing on a stale snapshot.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx, d *backlogDelta) error) error {
	tx, err := s.sqlDB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("claim: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var d backlogDelta
	if err := fn(tx, &d); err != nil {
		return err
	}
	if err := s.countBacklog(ctx, tx, d); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("claim: commit: %w", err)
	}
	return nil
}

// claimStmts are the claim path's statements prepared on the database
// (ClaimGroup.prepare); a nil one runs unprepared.
type claimStmts struct {
	claim     *sql.Stmt // claimSQL
	claimTold *sql.Stmt // claimToldSQLite (SQLite only)
	record    *sql.Stmt // recordClaimSQLite (SQLite only)
	ack       *sql.Stmt // ackSQLite (SQLite only)
}

// claimIn runs the claim in tx, with stmts when prepared, and adds the
// messages it handed out (waiting to initiated) to d. On SQLite a recorded
// claim's row is a second statement in tx, prepared too: parsed anew, its
// text cost ten times its run (BenchmarkPhoneFleet's profile); PostgreSQL's
// statement writes it itself.
func (s *Store) claimIn(ctx context.Context, tx *sql.Tx, stmts claimStmts, d *backlogDelta, accountID int64, limit int, maxPos int64, now time.Time, confirm Confirm) ([]Claimed, error) {
	args := s.claimArgs(accountID, limit, maxPos, now, confirm)
	told := !s.pg && confirm.ID != 0 && s.handOuts.remembers(accountID)
	var kept []handOut
	var keptPos []int64
	query := func() ([]Claimed, error) {
		if told {
			// The told accounts' claim also prints what their events need
			// (handOuts), remembered once the claim is recorded.
			var rows *sql.Rows
			var err error
			if stmts.claimTold != nil {
				rows, err = tx.StmtContext(ctx, stmts.claimTold).QueryContext(ctx, args...)
			} else {
				rows, err = tx.QueryContext(ctx, claimToldSQLite, args...)
			}
			return scanClaimed(rows, err, func(c Claimed, extra *[4]any) error {
				e := handOut{claim: confirm.ID, account: accountID, phone: c.Phone, text: c.Text, high: c.High, claimedAt: now.UTC()}
				attempts, ok := extra[0].(int64)
				sendAt, ok2 := extra[1].(int64)
				validUntil, ok3 := extra[2].(int64)
				accepted, ok4 := extra[3].(string)
				if !ok || !ok2 || !ok3 || !ok4 {
					return fmt.Errorf("claim: hand-out of %d: %T %T %T %T", c.Pos, extra[0], extra[1], extra[2], extra[3])
				}
				e.attempts, e.sendAt, e.validUntil, e.accepted = attempts, sendAt, validUntil, accepted
				keptPos = append(keptPos, c.Pos)
				kept = append(kept, e)
				return nil
			})
		}
		if stmts.claim != nil {
			return scanClaimed(tx.StmtContext(ctx, stmts.claim).QueryContext(ctx, args...))
		}
		return scanClaimed(tx.QueryContext(ctx, s.claimSQL(), args...))
	}
	out, err := query()
	if err == nil {
		d.add(-int64(len(out)), int64(len(out)))
	}
	if err != nil || s.pg || confirm.ID == 0 || len(out) == 0 {
		return out, err
	}
	positions := make([]int64, len(out))
	for i, m := range out {
		positions[i] = m.Pos
	}
	slices.Sort(positions) // encodePositions wants them ascending (out is high lane first)
	recordArgs := []any{confirm.ID, accountID, now.UnixMilli(), confirm.Expires.UnixMilli(), encodePositions(positions)}
	if stmts.record != nil {
		_, err = tx.StmtContext(ctx, stmts.record).ExecContext(ctx, recordArgs...)
	} else {
		_, err = tx.ExecContext(ctx, recordClaimSQLite, recordArgs...)
	}
	if err != nil {
		return nil, fmt.Errorf("claim: record: %w", err)
	}
	if told {
		// Before the commit: should the transaction roll back, these
		// positions carry another claim id or none, and are misses.
		s.handOuts.remember(keptPos, kept)
	}
	return out, nil
}

// SortHandOut sorts claimed messages in hand-out order: high priority
// first, FIFO within each priority.
func SortHandOut(out []Claimed) {
	slices.SortFunc(out, func(a, b Claimed) int {
		if a.High != b.High {
			if a.High {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Pos, b.Pos)
	})
}

// scanClaimed reads claimed rows and sorts them in hand-out order; with
// told (claimToldSQLite's rows), it also reads each row's four more columns
// (the driver's values, one array for all rows: no conversion) and gives
// them to told with the row.
func scanClaimed(rows *sql.Rows, err error, told ...func(c Claimed, extra *[4]any) error) ([]Claimed, error) {
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	defer rows.Close()
	var out []Claimed
	var extra [4]any
	for rows.Next() {
		var c Claimed
		var lane int16
		if len(told) > 0 {
			err = rows.Scan(&c.Pos, &c.Phone, &c.Text, &lane, &extra[0], &extra[1], &extra[2], &extra[3])
		} else {
			err = rows.Scan(&c.Pos, &c.Phone, &c.Text, &lane)
		}
		if err != nil {
			return nil, fmt.Errorf("claim: scan: %w", err)
		}
		c.High = lane == 0
		out = append(out, c)
		if len(told) > 0 {
			if err := told[0](c, &extra); err != nil {
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	// RETURNING order is unspecified.
	SortHandOut(out)
	return out, nil
}

// claimSQLite relies on SQLite's single writer: the subquery and the update
// run under one write lock. It takes the high lane (0) before the normal
// one (1), FIFO in each, skipping messages whose lifetime has ended (the
// sweeper expires them). "lane IN (0, 1)" makes SQLite seek the claim index
// once per lane, in lane order, with (account_id, lane) equal and pos up to
// the bound: the rows come out in hand-out order (no sort), and a claim
// bounded below a large backlog stops at the bound instead of walking the
// account's backlog (TestClaimUsesIndexSQLite checks the plan).
// Parameters: claimed at, claim id, account, max position, now (Unix ms),
// limit.
const claimSQLite = `UPDATE messages SET status = 1, claimed_at = ?1, claim_id = ?2, attempts = attempts + 1
WHERE pos IN (SELECT pos FROM messages WHERE account_id = ?3 AND lane IN (0, 1) AND status = 0 AND pos <= ?4
    AND (valid_until IS NULL OR valid_until > ?5) ORDER BY lane, pos LIMIT ?6)
RETURNING pos, phone, text, lane`

// claimToldSQLite is claimSQLite that also returns, for handOuts, the
// columns a told account's message events need beyond the claimed row's
// (the values after the update: the attempts counted); the accepted time
// as the text SQLite holds (|| ”: the driver would parse a DATETIME
// column), as wideReportedSQLite prints it. The claim's time is the
// claim's own argument.
const claimToldSQLite = claimSQLite + `, attempts, COALESCE(send_at, 0), COALESCE(valid_until, 0), accepted_at || ''`

// recordClaimSQLite records a claim to be confirmed, leased when the
// account has a lease (account_settings): then it ends leaseSeconds after
// now rather than at the confirm deadline, and its ack does not close it.
// Parameters: id, account, now (Unix ms), confirm deadline (Unix ms),
// positions.
const recordClaimSQLite = `INSERT INTO claims (id, account_id, expires_ms, positions, lease, max_attempts)
SELECT ?1, ?2, COALESCE(?3 + s.lease_seconds * 1000, ?4), ?5, COALESCE(s.on_expiry, 0), COALESCE(s.max_attempts, 0)
FROM (SELECT 1) LEFT JOIN account_settings s ON s.account_id = ?2 AND s.lease_seconds > 0`

// claimPostgres locks the picked rows, skipping rows a concurrent claim holds.
// The picks are CTEs rather than IN subqueries so that they are evaluated
// exactly once (a re-evaluated LIMIT subquery could pick more rows than
// asked); a CTE with FOR UPDATE is always materialised. One pick per lane,
// each a range scan of the claim index ((account_id, lane) equal, pos up to
// the bound): the high lane first, the normal lane for what is left. The
// same statement records the claim when it has an id ($5) and took
// something, leased as recordClaimSQLite says: one round trip either way.
// Parameters: claimed at, account, max position, limit, claim id (NULL: not
// recorded), confirm deadline (Unix ms), now (Unix ms).
const claimPostgres = `WITH high AS (
    SELECT pos FROM messages WHERE account_id = $2 AND lane = 0 AND status = 0 AND pos <= $3
        AND (valid_until IS NULL OR valid_until > $7)
    ORDER BY pos LIMIT $4 FOR UPDATE SKIP LOCKED
), normal AS (
    SELECT pos FROM messages WHERE account_id = $2 AND lane = 1 AND status = 0 AND pos <= $3
        AND (valid_until IS NULL OR valid_until > $7)
    ORDER BY pos LIMIT $4 - (SELECT count(*) FROM high) FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT pos FROM high UNION ALL SELECT pos FROM normal
), claimed AS (
    UPDATE messages m SET status = 1, claimed_at = $1, claim_id = $5, attempts = m.attempts + 1
    FROM picked WHERE m.pos = picked.pos AND m.status = 0
    RETURNING m.pos, m.phone, m.text, m.lane
), agg AS (
    SELECT count(*) AS n, array_agg(pos ORDER BY pos) AS positions FROM claimed
), recorded AS (
    INSERT INTO claims (id, account_id, expires_ms, positions, lease, max_attempts)
    SELECT $5, $2, COALESCE($7 + s.lease_seconds::bigint * 1000, $6), agg.positions,
        COALESCE(s.on_expiry, 0), COALESCE(s.max_attempts, 0)
    FROM agg LEFT JOIN account_settings s ON s.account_id = $2 AND s.lease_seconds > 0
    WHERE agg.n > 0 AND $5::bigint IS NOT NULL
)
SELECT pos, phone, text, lane FROM claimed`
