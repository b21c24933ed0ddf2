package harness

import (
	"math"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0.0001, 1}} {
		if got := Percentile(ds, c.q); got != c.want {
			t.Errorf("Percentile(1..1000, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	// With fewer samples than 1/(1-q) the tail percentile is the maximum,
	// never an interpolated value no operation had.
	if got := Percentile([]time.Duration{1, 2, 3, 10}, 0.999); got != 10 {
		t.Errorf("p99.9 of 4 samples = %v, want 10", got)
	}
	if got := Percentile([]time.Duration{7}, 0.5); got != 7 {
		t.Errorf("p50 of one sample = %v", got)
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of none = %v", got)
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, nan, 1}, 3}, // failed repetitions are skipped
		{[]float64{nan, 7, nan}, 7},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := Median([]float64{nan}); !math.IsNaN(got) {
		t.Errorf("Median(NaN) = %v, want NaN", got)
	}
	if got := MedianDuration([]time.Duration{30, 10, 20, 40}); got != 25 {
		t.Errorf("MedianDuration = %v, want 25", got)
	}
}

func TestPairedRatio(t *testing.T) {
	nan := math.NaN()
	// Per-repetition ratios 1, 3, 0.5: median 1, where the ratio of the
	// medians (200/100) would say 2.
	if got := PairedRatio([]float64{100, 300, 200}, []float64{100, 100, 400}); got != 1 {
		t.Errorf("PairedRatio = %v, want 1", got)
	}
	// A repetition where either side failed (or the peer measured zero)
	// drops out of the pairing.
	if got := PairedRatio([]float64{100, nan, 300, 50}, []float64{50, 10, 100, 0}); got != 2.5 {
		t.Errorf("PairedRatio with gaps = %v, want 2.5", got)
	}
	if got := PairedRatio([]float64{1}, []float64{nan}); !math.IsNaN(got) {
		t.Errorf("PairedRatio with no pair = %v, want NaN", got)
	}
}

func TestOrderAlternates(t *testing.T) {
	s := []string{"a", "b", "c"}
	for rep, want := range []string{"abc", "cba", "abc", "cba"} {
		got := ""
		for _, x := range Order(s, rep) {
			got += x
		}
		if got != want {
			t.Errorf("Order(rep %d) = %s, want %s", rep, got, want)
		}
	}
	if s[0] != "a" {
		t.Error("Order modified its input")
	}
}

func TestSig3(t *testing.T) {
	for x, want := range map[float64]string{
		0.04123: "0.0412", 4.123: "4.12", 41.23: "41.2", 412.3: "412", 4123: "4123", 0: "0", math.NaN(): "—",
	} {
		if got := sig3(x); got != want {
			t.Errorf("sig3(%v) = %q, want %q", x, got, want)
		}
	}
}
