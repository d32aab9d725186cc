// switch-ns peer: two goroutines call runtime.Gosched() in turn on one
// processor (GOMAXPROCS=1); nanoseconds per Gosched.
package main

import (
	"flag"
	"runtime"
	"sync"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func once(yields int) float64 {
	each := yields / 2
	var wg sync.WaitGroup
	wg.Add(2)
	body := func() {
		for i := 0; i < each; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	start := time.Now()
	go body()
	go body()
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(2*each)
}

func main() {
	switches := flag.Int("switches", 10_000_000, "yields per repetition")
	reps := flag.Int("reps", 5, "repetitions (the best is reported)")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	once(*switches / 10) // warm-up
	best := benchutil.BestOf(*reps, func() float64 { return once(*switches) })
	benchutil.PrintResult(best, map[string]interface{}{
		"switches": *switches, "gomaxprocs": runtime.GOMAXPROCS(0), "go": runtime.Version(),
	})
}
