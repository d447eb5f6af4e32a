package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apitosms/apitosms/client"
)

const sendUsage = `apitosms send [flags] (-csv FILE | -phone NUMBER -text MESSAGE)

Queues SMS: one with -phone and -text, or every row of a CSV file of
phone,message (a first row naming the columns, e.g. phone,message, is a
header; "-" reads standard input). Rows go out in batches of 1000, in file
order. Each refused row is printed with its line number and reason; the exit
status is non-zero when any row was not queued.`

// row is one message to send and where it came from.
type row struct {
	line  int // 1-based line in the CSV (0 for -phone/-text)
	phone string
	text  string
}

// Send implements `apitosms send`.
func Send(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("apitosms send", flag.ContinueOnError)
	var c common
	c.register(fs, env)
	csvPath := fs.String("csv", "", "CSV file of phone,message rows (\"-\": standard input)")
	phone := fs.String("phone", "", "the phone number of a single SMS")
	text := fs.String("text", "", "the text of a single SMS")
	out := fs.String("o", "", "write line,phone,hash,error for every row to this CSV file")
	key := fs.String("idempotency-key", "", "prefix of the batches' Idempotency-Keys: rerunning the same file with the same key within 24 hours queues nothing twice")
	progress := fs.String("progress", "auto", "progress bar: auto (when standard output is a terminal), always or never")
	if err := parse(fs, env, args, sendUsage); err != nil {
		return helpIsNoError(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("send: unexpected arguments %q", fs.Args())
	}
	var rows []row
	switch {
	case *csvPath != "" && (*phone != "" || *text != ""):
		return errors.New("send: give -csv or -phone/-text, not both")
	case *csvPath != "":
		in := env.Stdin
		if *csvPath != "-" {
			f, err := os.Open(*csvPath)
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			defer func() { _ = f.Close() }() // only read
			in = f
		}
		var err error
		if rows, err = readCSV(in); err != nil {
			return fmt.Errorf("send: %s: %w", *csvPath, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("send: %s has no rows", *csvPath)
		}
	case *phone != "" || *text != "":
		rows = []row{{phone: *phone, text: *text}}
	default:
		fs.Usage()
		return errors.New("send: nothing to send: give -csv FILE or -phone and -text")
	}
	var showBar bool
	switch *progress {
	case "auto":
		showBar = isTerminal(env.Stdout) && len(rows) > 1
	case "always":
		showBar = true
	case "never":
	default:
		return fmt.Errorf("send: -progress must be auto, always or never")
	}

	cl, ctx, cancel, err := c.client(ctx, env)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer cancel()
	msgs := make([]client.Message, len(rows))
	for i, r := range rows {
		msgs[i] = client.Message{Phone: r.phone, Text: r.text}
	}
	opts := []client.QueueOption{}
	if *key != "" {
		opts = append(opts, client.WithIdempotencyKey(*key))
	}
	var b *bar
	if showBar {
		b = &bar{w: env.Stdout, total: len(rows), start: time.Now()}
		b.draw(0)
		opts = append(opts, client.WithProgress(func(done, _ int) { b.draw(done) }))
	}
	res, qerr := cl.Queue(ctx, msgs, opts...)
	if b != nil {
		b.finish()
	}
	if res == nil { // refused before sending anything
		return fmt.Errorf("send: %w", qerr)
	}

	where := func(i int) string {
		if rows[i].line == 0 {
			return rows[i].phone
		}
		return fmt.Sprintf("line %d (%s)", rows[i].line, rows[i].phone)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(env.Stdout, "%s: %s\n", where(e.Index), e.Error)
	}
	if *out != "" {
		if err := writeResults(*out, rows, res); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	if len(rows) == 1 && len(res.Items) == 1 {
		fmt.Fprintf(env.Stdout, "queued %s: %s\n", res.Items[0].Phone, res.Items[0].Hash)
	} else {
		summary := fmt.Sprintf("queued %d of %d messages", res.Queued, len(rows))
		if n := res.Failed(); n > 0 {
			summary += fmt.Sprintf(", %d refused", n)
		}
		if res.Unsent > 0 {
			summary += fmt.Sprintf(", %d not sent (from %s on)", res.Unsent, where(len(rows)-res.Unsent))
		}
		fmt.Fprintln(env.Stdout, summary)
	}
	if qerr != nil {
		return fmt.Errorf("send: %w", qerr)
	}
	if n := res.Failed(); n > 0 {
		return fmt.Errorf("send: %d of %d messages refused", n, len(rows))
	}
	return nil
}

// readCSV reads phone,message rows. A first row whose cells name the columns
// (phone, and message or text) is a header, and then the columns may be in
// any order among others; otherwise the first two columns are phone and
// message. A UTF-8 byte order mark (spreadsheet exports) is skipped. The
// server validates the values: a row missing its message is sent as such and
// refused with the server's reason.
func readCSV(r io.Reader) ([]row, error) {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	phoneCol, textCol := 0, 1
	var rows []row
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		if first {
			if p, t, ok := header(rec); ok {
				phoneCol, textCol = p, t
				continue
			}
		}
		line, _ := cr.FieldPos(0)
		cell := func(i int) string {
			if i < len(rec) {
				return rec[i]
			}
			return ""
		}
		rows = append(rows, row{line: line, phone: strings.TrimSpace(cell(phoneCol)), text: cell(textCol)})
	}
}

// header finds the phone and message columns of a header row.
func header(rec []string) (phone, text int, ok bool) {
	phone, text = -1, -1
	for i, h := range rec {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "phone", "number", "to":
			if phone < 0 {
				phone = i
			}
		case "message", "text", "sms":
			if text < 0 {
				text = i
			}
		}
	}
	return phone, text, phone >= 0 && text >= 0
}

// writeResults writes line,phone,hash,error for every row.
func writeResults(path string, rows []row, res *client.QueueResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"line", "phone", "hash", "error"})
	items := make(map[int]client.QueuedItem, len(res.Items))
	for _, it := range res.Items {
		items[it.Index] = it
	}
	errs := make(map[int]string, len(res.Errors))
	for _, e := range res.Errors {
		errs[e.Index] = e.Error
	}
	for i, r := range rows {
		rec := []string{strconv.Itoa(r.line), r.phone, "", ""}
		switch it, ok := items[i]; {
		case ok:
			rec[1], rec[2] = it.Phone, it.Hash
		case errs[i] != "":
			rec[3] = errs[i]
		default:
			rec[3] = "not sent"
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close() // only read
		return err
	}
	return f.Close()
}

// bar draws a progress bar on a terminal, redrawing one line.
type bar struct {
	w     io.Writer
	total int
	start time.Time
}

const barWidth = 30

// draw redraws the line; ESC [K clears what a longer previous line left.
func (b *bar) draw(done int) {
	fmt.Fprint(b.w, "\r"+b.line(done)+"\x1b[K")
}

func (b *bar) line(done int) string {
	filled := 0
	if b.total > 0 {
		filled = done * barWidth / b.total
	}
	pct := 100
	if b.total > 0 {
		pct = done * 100 / b.total
	}
	return fmt.Sprintf("[%s%s] %3d%% %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		pct, done, b.total, time.Since(b.start).Round(100*time.Millisecond))
}

func (b *bar) finish() { fmt.Fprintln(b.w) }
