package harness

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-quantile (0 < q <= 1) of sorted by the
// nearest-rank method: the smallest sample with at least q of the samples
// at or below it. Nearest-rank never invents a latency that no operation
// had, which matters at p99.9 with few samples. Zero for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(n))) - 1
	i = max(0, min(n-1, i))
	return sorted[i]
}

// Median returns the median of xs (the mean of the middle two for an even
// count), ignoring NaNs, which stand for failed repetitions. NaN if none
// is left.
func Median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// PairedRatio returns the median over repetitions of a[i]/b[i]. Pairing
// the two systems' values from the same repetition (run back to back)
// cancels slow drift of the machine that a ratio of medians would keep.
// Repetitions where either value is missing (NaN) or b is zero are left
// out; NaN if none is left.
func PairedRatio(a, b []float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if math.IsNaN(a[i]) || math.IsNaN(b[i]) || b[i] == 0 {
			continue
		}
		rs = append(rs, a[i]/b[i])
	}
	return Median(rs)
}

// MedianDuration is Median for durations (no NaN handling needed: failed
// repetitions have no duration). Zero for none.
func MedianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	v := slices.Clone(ds)
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}
