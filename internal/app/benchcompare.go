package app

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/apitosms/apitosms/internal/benchcompare"
)

// benchCompareCommand: apitosms bench-compare BASE HEAD — compare two sets
// of `bench -json` results (files, or directories of *.json): per scenario
// and figure, each side's median and the ratio head/base, as Markdown.
// `make bench-compare` runs it on the runs it made (docs/benchmarks.md).
func benchCompareCommand(_ context.Context, rt Runtime, args []string) error {
	fs := flag.NewFlagSet("apitosms bench-compare", flag.ContinueOnError)
	if err := parseFlags(rt, fs, args, func(w io.Writer, _ *flag.FlagSet) {
		fmt.Fprint(w, "Usage: apitosms bench-compare BASE HEAD\n\n"+
			"Compare two sets of bench -json results. BASE and HEAD are each a result file or a\n"+
			"directory of them (e.g. two bench-results directories of make bench); the runs of one\n"+
			"backend and scenario form a group. Prints, as a Markdown table, each figure's median\n"+
			"on both sides, the ratio head/base, which direction is better, and the spread of the\n"+
			"runs. make bench-compare runs builds back to back and calls this (docs/benchmarks.md).\n")
	}); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("bench-compare: want BASE and HEAD (result files or directories), got %d arguments", fs.NArg())
	}
	base, err := benchcompare.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	head, err := benchcompare.Load(fs.Arg(1))
	if err != nil {
		return err
	}
	if len(base) == 0 || len(head) == 0 {
		return fmt.Errorf("bench-compare: no results in %q or %q", fs.Arg(0), fs.Arg(1))
	}
	return benchcompare.WriteTable(rt.Stdout, benchcompare.Compare(base, head), benchcompare.Runs(base, head))
}
