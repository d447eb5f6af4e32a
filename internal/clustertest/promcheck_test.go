package main

import (
	"reflect"
	"testing"
)

func TestSplitSetOpsAndBoolCompare(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up{component=~".+"} == 0 or apitosms_ready == 0`, []string{`up{component=~".+"} == bool 0`, `apitosms_ready == bool 0`}},
		{"(sum(rate(x[15m])) or vector(0)) == 0\nand on ()\nsum(rate(y[1h])) > 0",
			[]string{"(sum(rate(x[15m])) or vector(0)) == bool 0", "sum(rate(y[1h])) > bool 0"}},
		{`max by (s) ((time() - a) * (b > bool 0)) > 300`, []string{`max by (s) ((time() - a) * (b > bool 0)) > bool 300`}},
		{`a{x!="and"} > bool 1`, []string{`a{x!="and"} > bool 1`}},
		{`sorted unless orders`, []string{`sorted`, `orders`}},
	} {
		var got []string
		for _, p := range splitSetOps(c.expr) {
			got = append(got, boolCompare(p))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.expr, got, c.want)
		}
	}
}
