// spawn-ns and spawn-rss peer: goroutines, on one processor (GOMAXPROCS=1)
// like the single-threaded runtimes they are compared with.
//
//	-mode=ns  : start --count goroutines in batches of --batch, a
//	            sync.WaitGroup per batch; nanoseconds per goroutine.
//	-mode=rss : --count goroutines alive at once, each blocked on a channel
//	            until all are started; (peak RSS - baseline) / count in KiB.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func spawnNs(count, batch int) float64 {
	var ran int64
	var wg sync.WaitGroup
	start := time.Now()
	for done := 0; done < count; done += batch {
		n := batch
		if count-done < n {
			n = count - done
		}
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				atomic.AddInt64(&ran, 1)
				wg.Done()
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	if ran != int64(count) {
		panic("not every goroutine ran")
	}
	return float64(elapsed.Nanoseconds()) / float64(count)
}

func spawnRss(count int) float64 {
	release := make(chan struct{})
	var parked, finished sync.WaitGroup
	parked.Add(count)
	finished.Add(count)
	baseline := benchutil.StatusKiB("VmRSS")
	for i := 0; i < count; i++ {
		go func() {
			parked.Done()
			<-release
			finished.Done()
		}()
	}
	parked.Wait()
	peak := benchutil.StatusKiB("VmHWM")
	close(release)
	finished.Wait()
	return float64(peak-baseline) / float64(count)
}

func main() {
	mode := flag.String("mode", "ns", "ns or rss")
	count := flag.Int("count", 1_000_000, "goroutines")
	batch := flag.Int("batch", 1_000, "goroutines per batch (ns)")
	reps := flag.Int("reps", 3, "repetitions (ns; the best is reported)")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	extra := map[string]interface{}{
		"count": *count, "gomaxprocs": runtime.GOMAXPROCS(0), "go": runtime.Version(),
	}
	switch *mode {
	case "ns":
		spawnNs(*count/10, *batch) // warm-up
		best := benchutil.BestOf(*reps, func() float64 { return spawnNs(*count, *batch) })
		benchutil.PrintResult(best, extra)
	case "rss":
		benchutil.PrintResult(spawnRss(*count), extra)
	default:
		fmt.Fprintln(os.Stderr, "-mode must be ns or rss")
		os.Exit(2)
	}
}
