// Package benchutil holds what the Go benchmark peers share: best-of-N
// timing, memory figures from /proc/self/status, and the one JSON line each
// program prints for bench/run.py.
package benchutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// BestOf runs once reps times and returns the smallest figure.
func BestOf(reps int, once func() float64) float64 {
	best := math.Inf(1)
	for i := 0; i < reps; i++ {
		if v := once(); v < best {
			best = v
		}
	}
	return best
}

// StatusKiB returns a field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or -1.
func StatusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, field+":") {
			continue
		}
		fields := strings.Fields(line[len(field)+1:])
		if len(fields) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// PrintResult prints {"value": value, ...extra} on one line.
func PrintResult(value float64, extra map[string]interface{}) {
	out := map[string]interface{}{"value": math.Round(value*1e4) / 1e4}
	for k, v := range extra {
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(b))
}
