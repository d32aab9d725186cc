// channel-rtt-ns peer: two goroutines ping-pong an int over two unbuffered
// channels on one processor (GOMAXPROCS=1); nanoseconds per round trip.
// -procs=2 for channel-xworker-rtt-ns (Go decides where each one runs).
package main

import (
	"flag"
	"os"
	"runtime"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func once(trips int) float64 {
	ping := make(chan uint64)
	pong := make(chan uint64)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		for i := 0; i < trips; i++ {
			pong <- (<-ping) + 1
		}
		close(done)
	}()
	var sum uint64
	for i := 0; i < trips; i++ {
		ping <- uint64(i)
		sum += <-pong
	}
	<-done
	ns := float64(time.Since(start).Nanoseconds()) / float64(trips)
	if sum != uint64(trips)*uint64(trips+1)/2 {
		os.Exit(1)
	}
	return ns
}

func main() {
	trips := flag.Int("trips", 1_000_000, "round trips per repetition")
	reps := flag.Int("reps", 5, "repetitions (the best is reported)")
	procs := flag.Int("procs", 1, "GOMAXPROCS (2: channel-xworker-rtt-ns)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	once(*trips / 10) // warm-up
	best := benchutil.BestOf(*reps, func() float64 { return once(*trips) })
	benchutil.PrintResult(best, map[string]interface{}{
		"trips": *trips, "gomaxprocs": runtime.GOMAXPROCS(0), "go": runtime.Version(),
	})
}
