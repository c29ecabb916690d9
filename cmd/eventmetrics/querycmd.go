package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/server"
)

func queryCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "query the store in DIR directly (it must not be open elsewhere)")
	url := fs.String("url", "", "query a running server (default http://"+server.DefaultAddr+" when --data is not given)")
	token := fs.String("token", "", "bearer token for --url (default: $EVENTMETRICS_TOKEN)")
	asJSON := fs.Bool("json", false, "print the answer as JSON instead of a table")
	since := fs.Duration("since", 0, "select from now minus this on")
	from := fs.String("from", "", "inclusive lower bound (RFC 3339 or Unix ns)")
	to := fs.String("to", "", "exclusive upper bound (RFC 3339 or Unix ns)")
	aggs := fs.String("agg", "", "aggregations, comma-separated: last, min, max, mean, count, sum, increase, rate (default count,mean,min,max)")
	pcts := fs.String("percentiles", "", "exact percentiles, comma-separated (e.g. 50,90,99)")
	approx := fs.Float64("approx", 0, "with --percentiles: approximate them within this relative error (e.g. 0.01)")
	buckets := fs.String("buckets", "", "bucket upper bounds, comma-separated: count values per bucket")
	cumulative := fs.Bool("cumulative", false, "with --buckets: cumulative (Prometheus le) counts")
	points := fs.Bool("points", false, "print every selected point")
	groupBy := fs.String("group-by", "", "one row per combination of these labels, comma-separated (__name__ = metric name)")
	bySeries := fs.Bool("by-series", false, "one row per series")
	step := fs.Duration("step", 0, "one result per tumbling window of this length")
	rollups := fs.Bool("rollups", false, "let grouped aggregations read cold blocks' rollups")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: eventmetrics query [--data DIR | --url URL] [flags] SELECTOR

SELECTOR is name, name{label="v",other=~"re.*"} or {label="v"}. Examples:
  eventmetrics query --since 5m --percentiles 50,99 'http_request_duration_seconds{service="shop"}'
  eventmetrics query --since 1h --step 10m --group-by endpoint --agg count,mean http_request_duration_seconds
  eventmetrics query --since 1h --agg increase --group-by code http_requests_total

flags:`)
		fs.PrintDefaults()
	}
	if code, ok := parseArgs(fs, args, 1); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "eventmetrics query: "+format+"\n", a...)
		return code
	}
	name, ms, err := parseSelector(fs.Arg(0))
	if err != nil {
		return fail(2, "%v", err)
	}
	req := &server.QueryRequest{Name: name, Matchers: ms, Since: server.Duration(*since), BySeries: *bySeries, Step: server.Duration(*step), Rollups: *rollups, Cumulative: *cumulative, RelErr: *approx}
	for _, b := range []struct {
		s   string
		dst **server.Time
	}{{*from, &req.From}, {*to, &req.To}} {
		if b.s != "" {
			t, err := server.ParseTime(b.s)
			if err != nil {
				return fail(2, "%v", err)
			}
			*b.dst = (*server.Time)(&t)
		}
	}
	if *groupBy != "" {
		req.GroupBy = strings.Split(*groupBy, ",")
	}
	ops := 0
	for _, set := range []bool{*pcts != "", *buckets != "", *points} {
		if set {
			ops++
		}
	}
	if ops > 1 || ops == 1 && *aggs != "" {
		return fail(2, "give one of --agg, --percentiles, --buckets, --points")
	}
	switch {
	case *pcts != "":
		req.Op = "percentiles"
		if *approx > 0 {
			req.Op = "approx_percentiles"
		}
		if req.Percentiles, err = parseFloats(*pcts); err != nil {
			return fail(2, "--percentiles: %v", err)
		}
	case *buckets != "":
		req.Op = "buckets"
		bs, err := parseFloats(*buckets)
		if err != nil {
			return fail(2, "--buckets: %v", err)
		}
		for _, b := range bs {
			req.Bounds = append(req.Bounds, server.Float(b))
		}
	case *points:
		req.Op = "points"
	default:
		req.Op = "aggregate"
		req.Aggs = []string{"count", "mean", "min", "max"}
		if *aggs != "" {
			req.Aggs = strings.Split(*aggs, ",")
		}
	}

	var resp *server.QueryResponse
	if *data != "" {
		if *url != "" {
			return fail(2, "give --data or --url, not both")
		}
		db, err := engine.Open(*data, nil)
		if err != nil {
			if errors.Is(err, engine.ErrLocked) {
				return fail(1, "%v (is a server running on it? use --url)", err)
			}
			return fail(1, "%v", err)
		}
		defer db.Close()
		resp, err = server.RunQuery(db, req, 100_000_000)
		if err != nil {
			return fail(1, "%v", err)
		}
	} else {
		if *url == "" {
			*url = "http://" + server.DefaultAddr
		}
		if *token == "" {
			*token = os.Getenv("EVENTMETRICS_TOKEN")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		resp, err = client.Query(ctx, *url, *token, req)
		if err != nil {
			return fail(1, "%v", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(resp)
		return 0
	}
	printTable(stdout, req, resp)
	return 0
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// columns names the values of a row.
func columns(req *server.QueryRequest) []string {
	switch req.Op {
	case "aggregate":
		return req.Aggs
	case "percentiles", "approx_percentiles":
		out := make([]string, len(req.Percentiles))
		for i, p := range req.Percentiles {
			out[i] = "p" + strconv.FormatFloat(p, 'g', -1, 64)
		}
		return out
	case "buckets":
		out := make([]string, len(req.Bounds)+1)
		for i, b := range req.Bounds {
			out[i] = "le " + strconv.FormatFloat(float64(b), 'g', -1, 64)
		}
		out[len(req.Bounds)] = "+Inf"
		return out
	}
	return nil
}

func fmtFloat(v server.Float) string {
	b, _ := v.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func printTable(out io.Writer, req *server.QueryRequest, resp *server.QueryResponse) {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	defer tw.Flush()
	cols := columns(req)
	switch {
	case req.Op == "points":
		fmt.Fprintln(tw, "time\tvalue")
		for i, t := range resp.Timestamps {
			fmt.Fprintf(tw, "%s\t%s\n", fmtTime(t), fmtFloat(resp.Values[i]))
		}
	case resp.Rows != nil || len(req.GroupBy) > 0 || req.BySeries || req.Step > 0 || req.Op == "aggregate" && resp.Values == nil:
		fmt.Fprintf(tw, "labels\twindow\t%s\n", strings.Join(cols, "\t"))
		for _, r := range resp.Rows {
			keys := make([]string, 0, len(r.Labels))
			for k := range r.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + "=" + strconv.Quote(r.Labels[k])
			}
			ls := "{" + strings.Join(parts, ",") + "}"
			for i, t := range r.Times {
				vs := make([]string, len(r.Values[i]))
				for j, v := range r.Values[i] {
					vs[j] = fmtFloat(v)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ls, fmtTime(t), strings.Join(vs, "\t"))
			}
		}
	default:
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
		vs := make([]string, len(resp.Values))
		for i, v := range resp.Values {
			vs[i] = fmtFloat(v)
		}
		fmt.Fprintln(tw, strings.Join(vs, "\t"))
		if req.Op == "approx_percentiles" {
			fmt.Fprintf(tw, "(within a relative error of %g, over %d values)\n", resp.RelErr, resp.Count)
		}
	}
}
