package truth

import (
	"math"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/eventmetrics/eventmetrics/bench/workload"
)

// bigSum adds vs exactly (2,200 bits cover every float64 exponent).
func bigSum(vs []float64) float64 {
	acc := new(big.Float).SetPrec(2200)
	for _, v := range vs {
		acc.Add(acc, new(big.Float).SetPrec(2200).SetFloat64(v))
	}
	f, _ := acc.Float64()
	return f
}

func TestSumExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() float64{
		"lognormal": func() float64 { return math.Exp(-3 + r.NormFloat64()) },
		"signed":    func() float64 { return (r.Float64() - 0.5) * math.Pow(2, float64(r.IntN(200)-100)) },
		"huge-tiny": func() float64 {
			if r.IntN(2) == 0 {
				return math.Float64frombits(r.Uint64N(1 << 52)) // subnormal
			}
			return (r.Float64() - 0.5) * math.MaxFloat64
		},
		"cancel": func() float64 { return float64(r.IntN(1000)) * math.Pow(2, 60) * float64(1-2*r.IntN(2)) },
	}
	for name, gen := range gens {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, 10, 1000, 20000} {
				vs := make([]float64, n)
				var s Sum
				for i := range vs {
					vs[i] = gen()
					s.Add(vs[i])
				}
				if got, want := s.Float64(), bigSum(vs); math.Float64bits(got) != math.Float64bits(want) && !(got == 0 && want == 0) {
					t.Fatalf("n=%d: Sum %v, big.Float %v", n, got, want)
				}
			}
		})
	}
	var s Sum
	if s.Float64() != 0 {
		t.Fatal("empty sum is not 0")
	}
}

func TestCheckSum(t *testing.T) {
	var s Sum
	plain := 0.0
	for i := range 1000 {
		v := 0.1 * float64(i)
		s.Add(v)
		plain += v
	}
	if _, err := CheckSum(plain, &s); err != nil {
		t.Fatalf("a plain sum is refused: %v", err)
	}
	if _, err := CheckSum(plain*(1+1e-9), &s); err == nil {
		t.Fatal("a sum off by 1e-9 is accepted")
	}
	var ints Sum
	for i := range 100 {
		ints.Add(float64(i))
	}
	if _, err := CheckSum(4950, &ints); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckSum(math.Nextafter(4950, 5000), &ints); err == nil {
		t.Fatal("integer sums must be exact")
	}
}

func TestPercentile(t *testing.T) {
	for _, c := range []struct {
		a    []float64
		p    float64
		want float64
	}{
		{[]float64{7}, 50, 7},
		{[]float64{1, 2, 3, 4}, 0, 1},
		{[]float64{1, 2, 3, 4}, 50, 2.5},
		{[]float64{1, 2, 3, 4}, 100, 4},
		{[]float64{1, 2, 3, 4, 5}, 25, 2},
		{[]float64{0, 10}, 75, 7.5},
	} {
		if got := Percentile(c.a, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.a, c.p, got, c.want)
		}
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty: want NaN")
	}
}

// TestPercentileNumpy compares Percentile with numpy.percentile (method
// "linear", numpy's default) bit for bit, when a python3 with numpy is
// installed (Debian: python3-numpy).
func TestPercentileNumpy(t *testing.T) {
	py := numpyPython()
	if py == "" {
		t.Skip("no python3 with numpy")
	}
	r := rand.New(rand.NewPCG(3, 4))
	ps := []float64{0, 1, 10, 25, 33.3, 50, 66.6, 75, 90, 95, 99, 99.9, 100}
	var script strings.Builder
	script.WriteString("import numpy as np\n")
	var want [][]float64
	for _, n := range []int{1, 2, 3, 7, 100, 1001, 10000, 100208} {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = math.Exp(-3 + r.NormFloat64())
		}
		var hex []string
		for _, v := range vals {
			hex = append(hex, strconv.Quote(strconv.FormatFloat(v, 'x', -1, 64)))
		}
		script.WriteString("a = np.array([float.fromhex(x) for x in [" + strings.Join(hex, ",") + "]])\n")
		script.WriteString("print(' '.join(float(x).hex() for x in np.percentile(a, [" + join(ps) + "])))\n")
		want = append(want, Percentiles(vals, ps...))
	}
	// The standard Q1 series of W-event, as generated.
	pts, cfg := workload.Collect(workload.Config{Kind: workload.Event, Series: 1000, Points: 300})
	d := New(cfg, pts)
	q1 := d.VS[0]
	var hex []string
	for _, v := range q1 {
		hex = append(hex, strconv.Quote(strconv.FormatFloat(v, 'x', -1, 64)))
	}
	script.WriteString("a = np.array([float.fromhex(x) for x in [" + strings.Join(hex, ",") + "]])\n")
	script.WriteString("print(' '.join(float(x).hex() for x in np.percentile(a, [" + join(ps) + "])))\n")
	want = append(want, Percentiles(append([]float64(nil), q1...), ps...))

	cmd := exec.Command(py, "-")
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("python printed %d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		for j, f := range strings.Fields(line) {
			np, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatal(err)
			}
			if math.Float64bits(np) != math.Float64bits(want[i][j]) {
				t.Errorf("case %d p%v: numpy %v, Percentile %v", i, ps[j], np, want[i][j])
			}
		}
	}
}

// numpyPython returns a python3 that imports numpy, or "".
func numpyPython() string {
	cands := []string{"/usr/bin/python3"}
	if py, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, py)
	}
	for _, py := range cands {
		if exec.Command(py, "-c", "import numpy").Run() == nil {
			return py
		}
	}
	return ""
}

func join(ps []float64) string {
	var s []string
	for _, p := range ps {
		s = append(s, strconv.FormatFloat(p, 'g', -1, 64))
	}
	return strings.Join(s, ",")
}
