package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/eventmetrics/eventmetrics/query"
)

// findChromium returns the path of a Chromium (Debian's package is
// "chromium"), or skips the test when there is none, unless
// EVENTMETRICS_REQUIRE_SERVERS=1 (CI), where a missing browser fails it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("EVENTMETRICS_REQUIRE_SERVERS") == "1" {
		t.Fatal("no chromium on PATH (apt-get install -y chromium) and EVENTMETRICS_REQUIRE_SERVERS=1")
	}
	t.Skip("no chromium on PATH: apt-get install -y chromium")
	return ""
}

// artifactDir is where screenshots go: $EVENTMETRICS_ARTIFACTS when set
// (kept after the test), else a temporary folder.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("EVENTMETRICS_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is a headless Chromium tab for one test, with bounded waits.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium (or skips, see findChromium); it is stopped
// when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	chrome := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // root in a container
		chromedp.DisableGPU,
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Env("TZ=UTC"), // custom ranges are typed in local time
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel() // waits for the browser process to exit
		cancel()
	})
	// The first action starts the browser and ties it to the context it
	// gets: bctx itself, not one of the shorter-lived step contexts.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: bctx}
}

// step runs actions with a bounded wait, and on failure reports what the
// page shows.
func (b *browser) step(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage state: %s", what, err, pageState(b.ctx))
	}
}

// eval evaluates a JavaScript expression and decodes its value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(sctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("evaluate %s: %s: %v", expr, raw, err)
	}
}

// poll waits (at most 25 s) until the expression is true.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	b.step(what, 30*time.Second, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(25*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
}

// screenshot saves the whole page as a PNG artifact and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(artifactDir(b.t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// noScriptErrors fails the test if the page saw an uncaught error.
func (b *browser) noScriptErrors() {
	b.t.Helper()
	var jsErr string
	b.eval(`document.body.dataset.jsError || ''`, &jsErr)
	if jsErr != "" {
		b.t.Fatalf("script error in the page: %s", jsErr)
	}
}

// TestBrowser loads the dashboard in headless Chromium over a store with
// known data: the metric list shows the stored metrics with their series
// counts, selecting one draws its points (the count the page reports equals
// the stored count, and the canvas has drawn pixels), the histogram shows
// the counts the query layer computes for bounds typed into the page, the
// label filter narrows the chart, and no script error happens. It saves a
// screenshot of the page.
func TestBrowser(t *testing.T) {
	br := newBrowser(t)
	db := openFixture(t)
	srv := serve(t, db) // httptest listens on 127.0.0.1
	step, eval, poll := br.step, br.eval, br.poll

	// The page loads and lists the stored metrics with their series counts.
	step("load the page", 30*time.Second, chromedp.Navigate(srv.URL+"/"))
	poll("metric list", `document.querySelector('#metrics').dataset.state === 'ready'`)
	var listed []struct {
		Name   string `json:"name"`
		Series uint64 `json:"series"`
		Text   string `json:"text"`
	}
	eval(`[...document.querySelectorAll('#metrics li[data-metric]')].map(li => ({name: li.dataset.metric, series: +li.dataset.series, text: li.innerText}))`, &listed)
	stored, err := db.MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(stored) {
		t.Fatalf("the page lists %d metrics, the store holds %d: %+v", len(listed), len(stored), listed)
	}
	for i, m := range stored {
		l := listed[i]
		if l.Name != m.Value || l.Series != m.Series || !strings.Contains(l.Text, m.Value) || !strings.Contains(l.Text, fmt.Sprint(m.Series)) {
			t.Fatalf("metric %d: page shows %+v, store has %s with %d series", i, l, m.Value, m.Series)
		}
	}

	// Selecting a metric draws its points: the page reports as many drawn
	// points as the store holds in the last hour, and the canvas is not blank.
	step("select the metric", 10*time.Second, chromedp.Click(`#metrics li[data-metric="`+latency+`"]`))
	poll("values chart", fmt.Sprintf(`document.querySelector('#values-card').dataset.points === '%d'`, 3*latencyPoints))
	var inked int
	eval(`(() => { const c = document.querySelector('#values-chart canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()`, &inked)
	if inked < 500 {
		t.Fatalf("the values chart has %d drawn pixels: blank", inked)
	}
	for _, card := range []string{"agg", "pct", "hist", "card"} {
		poll(card+" card", fmt.Sprintf(`document.querySelector('#%s-card').dataset.state === 'ready'`, card))
	}

	// The histogram with bounds typed into the page shows the counts the
	// query layer computes.
	bounds := []float64{0.1, 0.2, 0.3, 0.5}
	step("type bucket bounds", 10*time.Second,
		chromedp.SetValue(`#hist-bounds`, "0.1, 0.2, 0.3, 0.5"),
		chromedp.Click(`#hist-form button[type="submit"]`))
	poll("histogram", `document.querySelector('#hist-card').dataset.bounds === '0.1,0.2,0.3,0.5' && document.querySelector('#hist-card').dataset.state === 'ready'`)
	var shown []uint64
	eval(`[...document.querySelectorAll('#hist-table td.count')].map(td => +td.dataset.count)`, &shown)
	want, err := db.Query(latency).Since(time.Hour).Buckets(bounds, false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(shown) != fmt.Sprint(want) {
		t.Fatalf("histogram table shows %v, the query layer counts %v", shown, want)
	}

	// The cardinality table lists the metric's labels.
	var labels []string
	eval(`[...document.querySelectorAll('#card-table tr[data-label]')].map(tr => tr.dataset.label + ':' + tr.querySelector('[data-distinct]').dataset.distinct)`, &labels)
	if fmt.Sprint(labels) != "[method:2 route:2]" {
		t.Fatalf("cardinality table: %v", labels)
	}

	// The screenshot, for a person to look at.
	br.screenshot("dashboard.png")

	// The label filter narrows the chart to the series with method=GET.
	step("filter by label", 10*time.Second,
		chromedp.SetValue(`#filter-label`, "method"),
		chromedp.SetValue(`#filter-value`, "GET"),
		chromedp.Click(`#filter button[type="submit"]`))
	gets, err := db.Query(latency, query.Eq("method", "GET")).Since(time.Hour).Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	poll("filtered values chart", fmt.Sprintf(`document.querySelector('#values-card').dataset.points === '%d'`, len(gets)))

	// A custom range (the browser runs in UTC, see newBrowser): the half
	// hour before fixtureNow.
	from := fixtureNow.Add(-30 * time.Minute)
	step("custom range", 10*time.Second,
		chromedp.Click(`#range-buttons button[data-custom]`),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#custom-from').value = %q; document.querySelector('#custom-to').value = %q`,
			from.Format("2006-01-02T15:04:05"), fixtureNow.Format("2006-01-02T15:04:05"))),
		chromedp.Click(`#custom-range button[type="submit"]`))
	half, err := db.Query(latency, query.Eq("method", "GET")).Between(from, fixtureNow).Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	poll("values chart over the custom range", fmt.Sprintf(`document.querySelector('#values-card').dataset.points === '%d'`, len(half)))

	br.noScriptErrors()
}

// TestBrowserRollups: over a week of cold data with rollups, the page marks
// the percentile chart approximate, and the values chart shows the
// downsampled points with the exact count.
func TestBrowserRollups(t *testing.T) {
	br := newBrowser(t)
	srv := serve(t, openRollupFixture(t))
	br.step("load the page", 30*time.Second, chromedp.Navigate(srv.URL+"/#metric=cold&last=7d"))
	br.poll("percentiles", `document.querySelector('#pct-card').dataset.state === 'ready'`)
	br.poll("values", `document.querySelector('#values-card').dataset.points > 0`)
	var got struct {
		Approximate string `json:"approximate"`
		Note        string `json:"note"`
		Total       string `json:"total"`
		Points      string `json:"points"`
		Range       string `json:"range"`
	}
	br.eval(`({approximate: document.querySelector('#pct-card').dataset.approximate, note: document.querySelector('#pct-note').innerText,
		total: document.querySelector('#values-card').dataset.total, points: document.querySelector('#values-card').dataset.points,
		range: document.querySelector('#range-buttons button.active').innerText})`, &got)
	if got.Approximate != "true" || !strings.Contains(got.Note, "approximate") || got.Range != "7d" {
		t.Fatalf("percentile card: %+v", got)
	}
	if got.Total != fmt.Sprint(rollupPoints) || got.Points == got.Total {
		t.Fatalf("values card: %s points shown of %s stored, want downsampled from %d", got.Points, got.Total, rollupPoints)
	}
	br.screenshot("dashboard-rollups.png")
	br.noScriptErrors()
}

// pageState summarizes the cards for a failure message.
func pageState(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Evaluate[string](`JSON.stringify({
		error: document.body.dataset.jsError || '',
		metrics: document.querySelector('#metrics') && document.querySelector('#metrics').dataset.state,
		cards: [...document.querySelectorAll('.card[data-state]')].map(c => c.id + '=' + c.dataset.state + ' ' + JSON.stringify(c.dataset) + ' ' + (c.querySelector('.msg') ? c.querySelector('.msg').textContent : '')),
	})`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}
