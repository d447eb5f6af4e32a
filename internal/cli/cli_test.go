package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     []row
	}{
		{"no header", "+1234567,hello\n+7654321,\"a, b\"\n",
			[]row{{1, "+1234567", "hello"}, {2, "+7654321", "a, b"}}},
		{"header, other order, extra columns", "id,Text,Phone\n1,hi,+1234567\n",
			[]row{{2, "+1234567", "hi"}}},
		{"byte order mark, blank lines, short row", "\uFEFFphone,message\n\n+1234567\n+7654321,x\n",
			[]row{{3, "+1234567", ""}, {4, "+7654321", "x"}}},
		{"multi-line message", "+1234567,\"two\nlines\"\n+7654321,y\n",
			[]row{{1, "+1234567", "two\nlines"}, {3, "+7654321", "y"}}},
		{"only a header", "phone,message\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readCSV(strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if _, err := readCSV(strings.NewReader("a,\"unterminated\n")); err == nil {
		t.Fatal("malformed CSV accepted")
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	b := &bar{w: &buf, total: 2500, start: time.Now()}
	if got := b.line(1000); !strings.HasPrefix(got, "[############..................]  40% 1000/2500 ") {
		t.Fatalf("line = %q", got)
	}
	if got := b.line(2500); !strings.HasPrefix(got, "[##############################] 100% 2500/2500 ") {
		t.Fatalf("line = %q", got)
	}
	b.draw(0)
	b.finish()
	if out := buf.String(); !strings.HasPrefix(out, "\r[....") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("drawn %q", out)
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	env := Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	ctx := context.Background()
	for _, c := range []struct {
		run  func(context.Context, Env, []string) error
		args []string
		want string
	}{
		{Send, nil, "nothing to send"},
		{Send, []string{"-csv", "x.csv", "-phone", "1"}, "not both"},
		{Send, []string{"-phone", "+1234567", "-text", "x"}, "APITOSMS_TOKEN"},
		{Send, []string{"-phone", "+1234567", "-text", "x", "-progress", "sometimes"}, "-progress"},
		{Status, nil, "no hashes"},
		{Status, []string{"abc:maybe"}, "outcome"},
		{Messages, []string{"-limit", "0"}, "-limit"},
	} {
		if err := c.run(ctx, env, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if err := Send(ctx, env, []string{"-h"}); err != nil {
		t.Errorf("-h: %v", err)
	}
}
