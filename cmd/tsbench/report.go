package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report holds every figure of a run. Its JSON form is what -json prints.
type report struct {
	Tool     string `json:"tool"`
	Workload string `json:"workload"` // W-event or W-scrape
	Metric   string `json:"metric"`
	Series   int    `json:"series"`
	// PointsPerSeries × Series = Points.
	PointsPerSeries int     `json:"points_per_series"`
	Points          int64   `json:"points"`
	Seed            uint64  `json:"seed"`
	OutOfOrder      float64 `json:"out_of_order"`
	Duplicates      float64 `json:"duplicates"`
	Shape           string  `json:"-"`
	// Standard: the standard full workload of WORKLOADS.md, to which the
	// PEERS.md references apply.
	Standard bool   `json:"standard_full_workload"`
	Mode     string `json:"mode"` // batch or single
	Writers  int    `json:"writers"`
	Batch    int    `json:"batch_size,omitempty"` // points per Append; absent in single mode
	Sync     string `json:"sync"`                 // always, interval or never: applies to every write figure

	Go           string    `json:"go"`
	CPUs         int       `json:"cpus"`
	LoadAvgStart []float64 `json:"load_avg_start,omitempty"`
	LoadAvgEnd   []float64 `json:"load_avg_end,omitempty"`
	Dir          string    `json:"dir"`
	FS           string    `json:"dir_filesystem,omitempty"`
	Kept         bool      `json:"dir_kept"`

	Generate struct {
		Seconds      float64 `json:"seconds"`
		PointsPerSec float64 `json:"points_per_sec"`
	} `json:"generate"` // the generator alone, nothing stored

	Ingest struct {
		Seconds       float64 `json:"seconds"`
		PointsPerSec  float64 `json:"points_per_sec"`
		SeriesSeconds float64 `json:"series_create_seconds"`
		SyncSeconds   float64 `json:"sync_seconds"` // DB.Sync after the last write
		Sync          string  `json:"sync"`
		// Single mode only: the latency of one Series.ObserveAtNanos.
		Latency *latencyReport `json:"append_latency,omitempty"`
	} `json:"ingest"`

	Memory struct {
		PeakRSS         int64   `json:"peak_rss_bytes"` // VmHWM of the ingesting process
		RSSBeforeSeries int64   `json:"rss_before_series_bytes"`
		RSSAfterIngest  int64   `json:"rss_after_ingest_bytes"`
		RSSPerSeries    float64 `json:"rss_per_series_bytes"`       // (after − before) / series
		HeapPerSeries   float64 `json:"live_heap_per_series_bytes"` // the same with the Go heap after a GC
		ParentPeakRSS   int64   `json:"parent_peak_rss_bytes"`      // VmHWM of the process that reopened and queried
	} `json:"memory"`

	Reopen struct {
		Seconds        float64 `json:"seconds"` // engine.Open after SIGKILL
		Segments       int     `json:"replayed_segments"`
		Records        int     `json:"replayed_records"`
		LogBytes       int64   `json:"replayed_log_bytes"`
		Points         int64   `json:"replayed_points"`
		PointsPerSec   float64 `json:"replay_points_per_sec"`
		PointsNote     string  `json:"replayed_points_note,omitempty"`
		TornTail       bool    `json:"torn_tail"`
		TruncatedBytes int64   `json:"truncated_bytes,omitempty"`
		PointsAfter    int64   `json:"points_after_reopen"` // Count over everything right after the reopen
	} `json:"reopen_after_kill"`

	Compact struct {
		CompactSeconds float64 `json:"compact_seconds"`
		CloseSeconds   float64 `json:"close_seconds"`
	} `json:"compact"`

	Disk struct {
		diskUsage
		BytesPerPoint float64 `json:"bytes_per_point"` // every file, log and index included
	} `json:"disk"`

	CleanReopenSeconds float64       `json:"clean_reopen_seconds"`
	Queries            []queryReport `json:"queries"`
	Verified           bool          `json:"answers_verified"`

	Peers *peersReport `json:"reference"`
}

type latencyReport struct {
	P50  float64 `json:"p50_ns"`
	P99  float64 `json:"p99_ns"`
	P999 float64 `json:"p999_ns"`
	Max  float64 `json:"max_ns"`
	Mean float64 `json:"mean_ns"`
	// Timer: the median cost of the timing itself, included in each sample.
	Timer float64 `json:"timer_overhead_p50_ns"`
	Note  string  `json:"note"`
}

type queryReport struct {
	Name     string    `json:"name"`
	What     string    `json:"what"`
	Series   int       `json:"series"` // series selected
	Points   int64     `json:"points"` // points selected
	MedianMs float64   `json:"median_ms"`
	RunsMs   []float64 `json:"runs_ms"`
	Answer   string    `json:"answer"`
	Verified bool      `json:"verified"`
	Error    string    `json:"error,omitempty"`
}

func (q *queryReport) setTimes(ds []time.Duration) {
	q.RunsMs = make([]float64, len(ds))
	for i, d := range ds {
		q.RunsMs[i] = millis(d)
	}
	q.MedianMs = millis(median(ds))
}

// peersReport compares the run with PEERS.md.
type peersReport struct {
	Source     string           `json:"source"`
	Engine     string           `json:"engine"`
	Applicable bool             `json:"applicable"`
	Note       string           `json:"note"`
	Figures    []peerComparison `json:"figures,omitempty"`
}

type peerComparison struct {
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	Ours   float64 `json:"ours"`
	Theirs float64 `json:"theirs"`
	Ratio  float64 `json:"ratio"`  // ours / theirs
	Better string  `json:"better"` // which way is better: higher or lower
	Text   string  `json:"text"`   // e.g. "2.1× faster"
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newReport(c *config) *report {
	wc := c.workload()
	r := &report{
		Tool: "tsbench", Workload: c.Kind.String(), Metric: wc.Metric(),
		Series: c.Series, PointsPerSeries: c.Points, Points: c.total(), Seed: c.Seed,
		OutOfOrder: c.OutOfOrder, Duplicates: c.Duplicates, Standard: c.standard(),
		Mode: c.modeName(), Writers: c.Writers, Sync: c.Sync.String(),
		Go: goVersion(), CPUs: runtime.NumCPU(), LoadAvgStart: loadAverage(),
	}
	if !c.Single {
		r.Batch = c.Batch
	}
	var shape []string
	if c.OutOfOrder > 0 {
		shape = append(shape, fmt.Sprintf("%g out of order", c.OutOfOrder))
	} else {
		shape = append(shape, "in order")
	}
	if c.Duplicates > 0 {
		shape = append(shape, fmt.Sprintf("%g duplicate timestamps", c.Duplicates))
	}
	shape = append(shape, fmt.Sprintf("seed %d", c.Seed))
	r.Shape = strings.Join(shape, ", ")
	return r
}

func (r *report) fillIngest(c *config, cr *childResult) {
	gen := time.Duration(cr.GenerateNs)
	r.Generate.Seconds = gen.Seconds()
	r.Generate.PointsPerSec = float64(c.total()) / gen.Seconds()
	in := time.Duration(cr.IngestNs)
	r.Ingest.Seconds = in.Seconds()
	r.Ingest.PointsPerSec = float64(cr.Points) / in.Seconds()
	r.Ingest.SeriesSeconds = time.Duration(cr.SeriesNs).Seconds()
	r.Ingest.SyncSeconds = time.Duration(cr.SyncNs).Seconds()
	r.Ingest.Sync = c.Sync.String()
	if c.Single {
		r.Ingest.Latency = &latencyReport{
			P50: cr.LatencyP50, P99: cr.LatencyP99, P999: cr.LatencyP999, Max: cr.LatencyMax, Mean: cr.LatencyMean,
			Timer: cr.TimerP50,
			Note:  "every Series.ObserveAtNanos timed with time.Now and time.Since (their cost, timer_overhead_p50_ns, included), in a log-linear histogram: ±0.8%",
		}
	}
	r.Memory.PeakRSS = cr.PeakRSS
	r.Memory.RSSBeforeSeries = cr.RSSBeforeSeries
	r.Memory.RSSAfterIngest = cr.RSSAfterIngest
	r.Memory.RSSPerSeries = float64(cr.RSSAfterIngest-cr.RSSBeforeSeries) / float64(c.Series)
	r.Memory.HeapPerSeries = float64(cr.LiveHeapAfter-cr.LiveHeapBefore) / float64(c.Series)
}

// comparePeers fills r.Peers once every figure is known.
func (r *report) comparePeers(c *config) {
	p := &peersReport{Source: peersSource, Engine: peerEngine, Applicable: c.standard()}
	r.Peers = p
	if !p.Applicable {
		p.Note = "the reference figures apply to the standard full workload only (-full, default seed, no out-of-order points or duplicates); none shown for this run: try -full (a few seconds here)"
		return
	}
	p.Note = "same workload on the same kind of machine; expect ±20% run to run. Ingest: the mean of PEERS.md's two runs, batched (1,000 points per call) with generation included; PEERS.md does not state the peer's fsync policy. Bytes/point: the peer's figure includes its WAL"
	f := prometheusTSDB[c.Kind]
	if !c.Single && (c.Writers == 1 || c.Writers == 2) {
		ref := f.Ingest1
		if c.Writers == 2 {
			ref = f.Ingest2
		}
		p.add("ingest rate", "M points/s", r.Ingest.PointsPerSec/1e6, mean2(ref), true, "faster", "slower")
	}
	p.add("bytes per point on disk", "B/point", r.Disk.BytesPerPoint, f.BytesPerPoint, false, "smaller", "larger")
	p.add("peak RSS during ingest", "MiB", mib(r.Memory.PeakRSS), mean2(f.PeakRSSMiB), false, "less", "more")
	for i, q := range r.Queries {
		if i < 4 {
			p.add(q.Name+" latency", "ms", q.MedianMs, f.QueryMs[i], false, "faster", "slower")
		}
	}
}

func (p *peersReport) add(figure, unit string, ours, theirs float64, higherBetter bool, good, bad string) {
	pc := peerComparison{Figure: figure, Unit: unit, Ours: ours, Theirs: theirs, Ratio: ours / theirs, Better: "lower"}
	if higherBetter {
		pc.Better = "higher"
	}
	// Express the ratio as "N× good" or "N× bad", N >= 1.
	better := pc.Ratio
	if !higherBetter {
		better = 1 / pc.Ratio
	}
	switch {
	case math.IsNaN(better) || math.IsInf(better, 0) || better == 0:
		pc.Text = "—"
	case better >= 1:
		pc.Text = fmt.Sprintf("%s× %s", f3(better), good)
	default:
		pc.Text = fmt.Sprintf("%s× %s", f3(1/better), bad)
	}
	p.Figures = append(p.Figures, pc)
}

func (p *peersReport) find(figure string) *peerComparison {
	if p == nil {
		return nil
	}
	for i := range p.Figures {
		if p.Figures[i].Figure == figure {
			return &p.Figures[i]
		}
	}
	return nil
}

// writeJSON prints r as one JSON object.
func writeJSON(w io.Writer, r *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonSafe(r))
}

// jsonSafe returns r, or a copy of it with 0 for the NaN and infinite
// figures (a rate over a zero duration, say) that encoding/json refuses.
func jsonSafe(r *report) any {
	if _, err := json.Marshal(r); err == nil {
		return r
	}
	c := *r
	fix := func(v *float64) {
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			*v = 0
		}
	}
	fix(&c.Generate.PointsPerSec)
	fix(&c.Ingest.PointsPerSec)
	fix(&c.Reopen.PointsPerSec)
	fix(&c.Disk.BytesPerPoint)
	fix(&c.Memory.RSSPerSeries)
	fix(&c.Memory.HeapPerSeries)
	if c.Ingest.Latency != nil {
		l := *c.Ingest.Latency
		fix(&l.P50)
		fix(&l.P99)
		fix(&l.P999)
		fix(&l.Max)
		fix(&l.Mean)
		c.Ingest.Latency = &l
	}
	if c.Peers != nil {
		p := *c.Peers
		p.Figures = append([]peerComparison(nil), p.Figures...)
		for i := range p.Figures {
			fix(&p.Figures[i].Ratio)
			fix(&p.Figures[i].Ours)
		}
		c.Peers = &p
	}
	return &c
}

// row is one line of the table.
type row struct {
	phase, figure, value, unit, how string
}

// writeTable prints r as an aligned table.
func writeTable(w io.Writer, r *report) {
	std := ""
	if r.Standard {
		std = " (the standard full workload)"
	}
	fmt.Fprintf(w, "tsbench — %s (%s): %s series × %s points = %s points%s; %s\n",
		r.Workload, r.Metric, commas(int64(r.Series)), commas(int64(r.PointsPerSeries)), commas(r.Points), std, r.Shape)
	setup := fmt.Sprintf("%d writer", r.Writers)
	if r.Writers != 1 {
		setup += "s"
	}
	if r.Mode == "single" {
		setup += ", single points (Series.ObserveAtNanos)"
	} else {
		setup += fmt.Sprintf(", batch %s points per DB.Append", commas(int64(r.Batch)))
	}
	fmt.Fprintf(w, "writes: %s mode, %s, sync=%s\n", r.Mode, setup, r.Sync)
	fs := r.FS
	if fs == "" {
		fs = "filesystem unknown"
	}
	fmt.Fprintf(w, "machine: %s, %d CPUs, load average %s at start, %s at end; data on %s\n\n",
		r.Go, r.CPUs, fmtLoad(r.LoadAvgStart), fmtLoad(r.LoadAvgEnd), fs)

	sync := "sync=" + r.Sync
	rows := []row{
		{"ingest", "generation alone", f3(r.Generate.PointsPerSec / 1e6), "M points/s", "generator only, nothing stored (the ingest includes it, on its own goroutine)"},
		{"ingest", "series creation", f3(r.Ingest.SeriesSeconds * 1e3), "ms", fmt.Sprintf("%s × DB.Series", commas(int64(r.Series)))},
		{"ingest", "ingest rate", f3(r.Ingest.PointsPerSec / 1e6), "M points/s", setup + ", " + sync + generatorNote(r)},
		{"ingest", "ingest time", f3(r.Ingest.Seconds), "s", fmt.Sprintf("%s points, %s", commas(r.Points), sync)},
	}
	if l := r.Ingest.Latency; l != nil {
		unit, div := "ns", 1.0
		if l.P50 >= 10_000 {
			unit, div = "µs", 1000
		}
		rows = append(rows,
			row{"ingest", "append latency p50", f3(l.P50 / div), unit, fmt.Sprintf("one Series.ObserveAtNanos, %s (includes %s ns of timing)", sync, f3(l.Timer))},
			row{"ingest", "append latency p99", f3(l.P99 / div), unit, "one Series.ObserveAtNanos, " + sync},
			row{"ingest", "append latency p99.9 / max", f3(l.P999/div) + " / " + f3(l.Max/div), unit, "one Series.ObserveAtNanos, " + sync},
		)
	}
	rows = append(rows,
		row{"ingest", "sync after ingest", f3(r.Ingest.SyncSeconds * 1e3), "ms", "DB.Sync after the last write, " + sync},
		row{"memory", "peak RSS during ingest", f3(mib(r.Memory.PeakRSS)), "MiB", "VmHWM of the ingesting process"},
		row{"memory", "RSS per active series", f3(r.Memory.RSSPerSeries / 1024), "KiB", fmt.Sprintf("(VmRSS after ingest %.1f − before creating the series %.1f MiB) / %s", mib(r.Memory.RSSAfterIngest), mib(r.Memory.RSSBeforeSeries), commas(int64(r.Series)))},
		row{"memory", "live Go heap per series", f3(r.Memory.HeapPerSeries / 1024), "KiB", "the same with the Go heap after a forced GC"},
		row{"reopen", "reopen after kill -9", f3(r.Reopen.Seconds * 1e3), "ms", fmt.Sprintf("engine.Open after SIGKILL: %s, %s records, %.1f MiB of log replayed%s", plural(r.Reopen.Segments, "segment"), commas(int64(r.Reopen.Records)), mib(r.Reopen.LogBytes), tornNote(r))},
	)
	if r.Reopen.PointsNote == "" {
		rest := "all of them"
		if r.Reopen.Points < r.Points {
			rest = fmt.Sprintf("the other %s had been checkpointed", commas(r.Points-r.Reopen.Points))
		}
		rows = append(rows, row{"reopen", "replay rate", f3(r.Reopen.PointsPerSec / 1e6), "M points/s", fmt.Sprintf("%s points replayed (%s); %s of %s back, %s", commas(r.Reopen.Points), rest, commas(r.Reopen.PointsAfter), commas(r.Points), sync)})
	} else {
		rows = append(rows, row{"reopen", "replay rate", "—", "M points/s", r.Reopen.PointsNote})
	}
	rows = append(rows,
		row{"disk", "compact", f3(r.Compact.CompactSeconds * 1e3), "ms", "DB.Compact (checkpoint of the replayed points into the store)"},
		row{"disk", "close", f3(r.Compact.CloseSeconds * 1e3), "ms", "DB.Close (final checkpoint)"},
		row{"disk", "size on disk", f3(mib(r.Disk.Bytes)), "MiB", fmt.Sprintf("%d files: log %.2f, store %.2f MiB, other %d B", r.Disk.Files, mib(r.Disk.WALBytes), mib(r.Disk.StoreBytes), r.Disk.OtherBytes)},
		row{"disk", "bytes per point", f3(r.Disk.BytesPerPoint), "B/point", "every file (log, index, chunks) after compact + close; " + sync},
		row{"query", "clean reopen", f3(r.CleanReopenSeconds * 1e3), "ms", "engine.Open after Close"},
	)
	for _, q := range r.Queries {
		status := "correct"
		if !q.Verified {
			status = "WRONG: " + q.Error
		}
		if q.Points == 0 {
			status += " (selects no points: with -duplicates or few points the series end before the range's last 10%)"
		}
		rows = append(rows, row{"query", q.Name + " latency", f3(q.MedianMs), "ms",
			fmt.Sprintf("median of %d; %s series, %s points; %s; %s", len(q.RunsMs), commas(int64(q.Series)), commas(q.Points), q.Answer, status)})
	}
	rows = append(rows, row{"memory", "peak RSS after the kill", f3(mib(r.Memory.ParentPeakRSS)), "MiB", "VmHWM of the parent: replay, compact, ground truth, queries"})

	peerKey := map[string]string{
		"ingest rate": "ingest rate", "bytes per point": "bytes per point on disk", "peak RSS during ingest": "peak RSS during ingest",
		"Q1 latency": "Q1 latency", "Q2 latency": "Q2 latency", "Q3 latency": "Q3 latency", "Q4 latency": "Q4 latency",
	}
	withPeers := r.Peers != nil && r.Peers.Applicable
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if withPeers {
		fmt.Fprintln(tw, "PHASE\tFIGURE\tVALUE\tUNIT\tPROMETHEUS TSDB\tVS PROMETHEUS\tHOW")
	} else {
		fmt.Fprintln(tw, "PHASE\tFIGURE\tVALUE\tUNIT\tHOW")
	}
	for _, x := range rows {
		if withPeers {
			ref, ratio := "", ""
			if pc := r.Peers.find(peerKey[x.figure]); pc != nil {
				ref, ratio = f3(pc.Theirs), pc.Text
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.phase, x.figure, x.value, x.unit, ref, ratio, x.how)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.phase, x.figure, x.value, x.unit, x.how)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	switch {
	case len(r.Queries) == 0:
		fmt.Fprintln(w, "Answers: not checked (an earlier phase failed).")
	case r.Verified:
		fmt.Fprintln(w, "Answers: all correct (checked against ground truth regenerated from the seed; percentiles bit-exact).")
	default:
		fmt.Fprintln(w, "Answers: WRONG — see the query rows.")
	}
	if r.Peers != nil {
		if withPeers {
			fmt.Fprintf(w, "Reference: %s, from %s: %s.\n", r.Peers.Engine, r.Peers.Source, r.Peers.Note)
		} else {
			fmt.Fprintf(w, "Reference: %s, %s: %s.\n", r.Peers.Engine, r.Peers.Source, r.Peers.Note)
		}
	}
	if r.Kept {
		fmt.Fprintf(w, "Data kept in %s.\n", r.Dir)
	}
}

// generatorNote warns when the generator, not the engine, bounds the
// ingest rate (the generator's out-of-order queue is slow, for one).
func generatorNote(r *report) string {
	if r.Generate.PointsPerSec < 1.5*r.Ingest.PointsPerSec {
		return "; LIMITED BY THE GENERATOR (see generation alone)"
	}
	return ""
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func tornNote(r *report) string {
	if r.Reopen.TornTail {
		return fmt.Sprintf("; torn tail cut (%d B)", r.Reopen.TruncatedBytes)
	}
	return ""
}

func fmtLoad(l []float64) string {
	if len(l) != 3 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// f3 formats a figure with about three significant digits.
func f3(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
