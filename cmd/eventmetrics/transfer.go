package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventmetrics/eventmetrics/client"
	"github.com/eventmetrics/eventmetrics/encode"
	"github.com/eventmetrics/eventmetrics/engine"
	"github.com/eventmetrics/eventmetrics/index"
	"github.com/eventmetrics/eventmetrics/query"
	"github.com/eventmetrics/eventmetrics/server"
)

// The export formats. A JSON line is a point of POST /em/v1/ingest:
//
//	{"name":"latency","labels":{"service":"a"},"value":0.12,"timestamp":1700000000000000000}
//
// CSV has the header name,labels,timestamp,value; labels is a JSON object,
// timestamp Unix ns, value a number or NaN, +Inf, -Inf.
var csvHeader = []string{"name", "labels", "timestamp", "value"}

func exportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "jsonl", "jsonl or csv")
	out := fs.String("out", "-", "file to write (- = standard output)")
	since := fs.Duration("since", 0, "export from now minus this on")
	from := fs.String("from", "", "inclusive lower bound (RFC 3339 or Unix ns)")
	to := fs.String("to", "", "exclusive upper bound (RFC 3339 or Unix ns)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: eventmetrics export [--format jsonl|csv] [--out FILE] [--since D | --from T --to T] DIR [SELECTOR]

Writes every point of the series selected (default: all) in the store in DIR,
series by series, as JSON lines (the ingest API's points) or CSV.

flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *format != "jsonl" && *format != "csv" {
		fs.Usage()
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "eventmetrics export: "+format+"\n", a...)
		return code
	}
	var name string
	var ms []query.Matcher
	if fs.NArg() == 2 {
		n, specs, err := parseSelector(fs.Arg(1))
		if err != nil {
			return fail(2, "%v", err)
		}
		if ms, err = server.Matchers(specs); err != nil {
			return fail(2, "%v", err)
		}
		name = n
	}
	mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
	if *since > 0 {
		mint = time.Now().Add(-*since).UnixNano()
	}
	for _, b := range []struct {
		s   string
		dst *int64
		adj int64
	}{{*from, &mint, 0}, {*to, &maxt, -1}} {
		if b.s != "" {
			t, err := server.ParseTime(b.s)
			if err != nil {
				return fail(2, "%v", err)
			}
			*b.dst = t + b.adj
		}
	}
	if _, err := os.Stat(fs.Arg(0)); err != nil {
		return fail(2, "%v", err)
	}
	db, err := engine.Open(fs.Arg(0), nil)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer db.Close()
	var w io.Writer = stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fail(1, "%v", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := csv.NewWriter(bw)
	if *format == "csv" {
		cw.Write(csvHeader)
	}
	var n int
	var ts []int64
	var vs []float64
	var line []byte
	err = db.Select(name, ms, mint, maxt, query.Hints{Labels: true}, func(_ uint64, sname string, ls []index.Label, it query.ChunkIterator) error {
		if strings.HasPrefix(sname, "__eventmetrics") {
			return nil
		}
		lj, _ := json.Marshal(labelMap(ls))
		nj, _ := json.Marshal(sname)
		for it.Next() {
			c := it.At()
			cts, cvs := c.TS, c.VS
			if c.Encoded {
				data, err := it.Data()
				if err != nil {
					return err
				}
				if _, ts, vs, err = encode.DecodeAll(data, ts[:0], vs[:0]); err != nil {
					return fmt.Errorf("series %s: %w", index.String(sname, ls), err)
				}
				cts, cvs = ts, vs
			}
			lo, hi := max(mint, c.MinT), min(maxt, c.MaxT)
			for i, t := range cts {
				if t < lo || t > hi {
					continue
				}
				n++
				if *format == "csv" {
					fv, _ := server.Float(cvs[i]).MarshalJSON()
					cw.Write([]string{sname, string(lj), strconv.FormatInt(t, 10), strings.Trim(string(fv), `"`)})
					continue
				}
				line = append(line[:0], `{"name":`...)
				line = append(line, nj...)
				line = append(line, `,"labels":`...)
				line = append(line, lj...)
				line = append(line, `,"value":`...)
				fv, _ := server.Float(cvs[i]).MarshalJSON()
				line = append(line, fv...)
				line = append(line, `,"timestamp":`...)
				line = strconv.AppendInt(line, t, 10)
				line = append(line, "}\n"...)
				bw.Write(line)
			}
		}
		return it.Err()
	})
	if err != nil {
		return fail(1, "%v", err)
	}
	cw.Flush()
	if err := errors.Join(cw.Error(), bw.Flush()); err != nil {
		return fail(1, "write: %v", err)
	}
	fmt.Fprintf(stderr, "eventmetrics export: %d points\n", n)
	return 0
}

func labelMap(ls []index.Label) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "jsonl", "jsonl or csv (as written by export)")
	data := fs.String("data", "", "write into the store in DIR directly (it must not be open elsewhere)")
	url := fs.String("url", "", "write through a running server (default http://"+server.DefaultAddr+" when --data is not given)")
	token := fs.String("token", "", "bearer token for --url (default: $EVENTMETRICS_TOKEN)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: eventmetrics import [--format jsonl|csv] [--data DIR | --url URL] [FILE]

Reads points (default: standard input) as written by export and writes them,
with their timestamps, into a store or through a server. Points are events:
importing the same file twice stores every point twice.

flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 || *format != "jsonl" && *format != "csv" || *data != "" && *url != "" {
		fs.Usage()
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "eventmetrics import: "+format+"\n", a...)
		return code
	}
	var in io.Reader = os.Stdin
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fail(2, "%v", err)
		}
		defer f.Close()
		in = f
	}
	var w engine.Writer
	if *data != "" {
		db, err := engine.Open(*data, nil)
		if err != nil {
			if errors.Is(err, engine.ErrLocked) {
				return fail(1, "%v (is a server running on it? use --url)", err)
			}
			return fail(1, "%v", err)
		}
		w = db
	} else {
		if *url == "" {
			*url = "http://" + server.DefaultAddr
		}
		if *token == "" {
			*token = os.Getenv("EVENTMETRICS_TOKEN")
		}
		c, err := client.New(*url, &client.Options{BearerToken: *token, RetryFor: time.Minute})
		if err != nil {
			return fail(2, "%v", err)
		}
		w = c
	}
	n, err := importPoints(w, in, *format)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fail(1, "after %d points: %v", n, err)
	}
	fmt.Fprintf(stdout, "imported %d points\n", n)
	return 0
}

// importPoints writes the points read from in through w.
func importPoints(w engine.Writer, in io.Reader, format string) (int, error) {
	write := func(p *server.Point) error {
		if p.Value == nil {
			return errors.New("point has no value")
		}
		switch p.Op {
		case "increment":
			return w.Increment(p.Name, float64(*p.Value), p.Labels)
		case "", "observe":
			if p.Timestamp == nil {
				return w.Observe(p.Name, float64(*p.Value), p.Labels)
			}
			return w.ObserveAt(time.Unix(0, int64(*p.Timestamp)), p.Name, float64(*p.Value), p.Labels)
		}
		return fmt.Errorf("unknown op %q", p.Op)
	}
	n := 0
	if format == "csv" {
		r := csv.NewReader(in)
		r.FieldsPerRecord = len(csvHeader)
		for line := 1; ; line++ {
			rec, err := r.Read()
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			if line == 1 && rec[0] == csvHeader[0] && rec[1] == csvHeader[1] {
				continue
			}
			var p server.Point
			p.Name = rec[0]
			if rec[1] != "" {
				if err := json.Unmarshal([]byte(rec[1]), &p.Labels); err != nil {
					return n, fmt.Errorf("line %d: labels: %v", line, err)
				}
			}
			t, err := strconv.ParseInt(rec[2], 10, 64)
			if err != nil {
				return n, fmt.Errorf("line %d: timestamp %q is not an integer of Unix ns", line, rec[2])
			}
			v, err := strconv.ParseFloat(rec[3], 64)
			if err != nil {
				return n, fmt.Errorf("line %d: value %q is not a number", line, rec[3])
			}
			p.Timestamp, p.Value = (*server.Time)(&t), (*server.Float)(&v)
			if err := write(&p); err != nil {
				return n, fmt.Errorf("line %d: %w", line, err)
			}
			n++
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var p server.Point
		if err := json.Unmarshal(b, &p); err != nil {
			return n, fmt.Errorf("line %d: %v", line, err)
		}
		if err := write(&p); err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		n++
	}
	return n, sc.Err()
}

func statsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	top := fs.Int("top", 20, "show the labels with the most values, at most this many")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: eventmetrics stats [--json] [--top N] DIR

Prints the store's series, points and disk use, per metric, and the
cardinality (number of values) of each label. (A running server answers the
same series count and its own counters at GET /em/v1/stats.)

flags:`)
		fs.PrintDefaults()
	}
	if code, ok := parseArgs(fs, args, 1); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "eventmetrics stats: "+format+"\n", a...)
		return code
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		return fail(2, "%v", err)
	}
	db, err := engine.Open(dir, nil)
	if err != nil {
		if errors.Is(err, engine.ErrLocked) {
			return fail(1, "%v (a running server answers GET /em/v1/stats)", err)
		}
		return fail(1, "%v", err)
	}
	defer db.Close()
	type metric struct {
		Name   string `json:"name"`
		Series uint64 `json:"series"`
		Points uint64 `json:"points"`
	}
	type label struct {
		Name   string `json:"name"`
		Values int    `json:"values"`
	}
	var st struct {
		Series    uint64   `json:"series"`
		Points    uint64   `json:"points"`
		DiskBytes int64    `json:"disk_bytes"`
		Metrics   []metric `json:"metrics"`
		Labels    []label  `json:"labels"`
	}
	names, err := db.MetricNames()
	if err != nil {
		return fail(1, "%v", err)
	}
	for _, nv := range names {
		c, err := db.Query(nv.Value).Scalar(query.Count)
		if err != nil {
			return fail(1, "count %s: %v", nv.Value, err)
		}
		st.Series += nv.Series
		st.Points += uint64(c)
		st.Metrics = append(st.Metrics, metric{nv.Value, nv.Series, uint64(c)})
	}
	lnames, err := db.LabelNames("")
	if err != nil {
		return fail(1, "%v", err)
	}
	for _, l := range lnames {
		if l == index.MetricNameLabel {
			continue
		}
		vals, err := db.LabelValues(l, "")
		if err != nil {
			return fail(1, "%v", err)
		}
		st.Labels = append(st.Labels, label{l, len(vals)})
	}
	sort.Slice(st.Labels, func(i, j int) bool {
		if st.Labels[i].Values != st.Labels[j].Values {
			return st.Labels[i].Values > st.Labels[j].Values
		}
		return st.Labels[i].Name < st.Labels[j].Name
	})
	if len(st.Labels) > *top {
		st.Labels = st.Labels[:*top]
	}
	db.Close()
	st.DiskBytes = dirBytes(dir)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return 0
	}
	fmt.Fprintf(stdout, "series: %d\npoints: %d\ndisk:   %d bytes\n\n", st.Series, st.Points, st.DiskBytes)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tseries\tpoints")
	for _, m := range st.Metrics {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", m.Name, m.Series, m.Points)
	}
	fmt.Fprintln(tw, "\nlabel\tvalues (cardinality)\t")
	for _, l := range st.Labels {
		fmt.Fprintf(tw, "%s\t%d\t\n", l.Name, l.Values)
	}
	tw.Flush()
	return 0
}
