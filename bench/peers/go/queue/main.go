// queue-msgs peer: Go buffered channels, groups of producer and consumer
// goroutines on one processor (GOMAXPROCS=1), the shape of
// bench/queue/queue_shape.hpp. Messages per second.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func once(groups, producers, consumers, msgs, capacity int) float64 {
	sums := make([]uint64, groups)
	var all sync.WaitGroup
	start := time.Now()
	for g := 0; g < groups; g++ {
		q := make(chan uint64, capacity)
		var prod sync.WaitGroup
		var mu sync.Mutex
		prod.Add(producers)
		all.Add(consumers + producers)
		for c := 0; c < consumers; c++ {
			go func(g int) {
				var sum uint64
				for v := range q {
					sum += v
				}
				mu.Lock()
				sums[g] += sum
				mu.Unlock()
				all.Done()
			}(g)
		}
		for p := 0; p < producers; p++ {
			go func() {
				for i := 1; i <= msgs; i++ {
					q <- uint64(i)
				}
				prod.Done()
				all.Done()
			}()
		}
		go func() {
			prod.Wait()
			close(q)
		}()
	}
	all.Wait()
	secs := time.Since(start).Seconds()
	want := uint64(producers) * uint64(msgs) * uint64(msgs+1) / 2
	for g, s := range sums {
		if s != want {
			fmt.Fprintf(os.Stderr, "group %d: sum %d, want %d\n", g, s, want)
			os.Exit(1)
		}
	}
	return float64(groups*producers*msgs) / secs
}

func main() {
	groups := flag.Int("groups", 10, "groups")
	producers := flag.Int("producers", 10, "producers per group")
	consumers := flag.Int("consumers", 10, "consumers per group")
	messages := flag.Int("messages", 10000, "messages per producer")
	capacity := flag.Int("capacity", 128, "channel capacity")
	reps := flag.Int("reps", 3, "repetitions (the best is reported)")
	procs := flag.Int("procs", 1, "GOMAXPROCS (2: queue-xworker-msgs)")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	once(*groups, *producers, *consumers, *messages/10, *capacity) // warm-up
	best := -benchutil.BestOf(*reps, func() float64 {
		return -once(*groups, *producers, *consumers, *messages, *capacity)
	})
	benchutil.PrintResult(best, map[string]interface{}{
		"groups": *groups, "producers": *producers, "consumers": *consumers,
		"messages": *messages, "capacity": *capacity, "gomaxprocs": runtime.GOMAXPROCS(0),
		"go": runtime.Version(),
	})
}
