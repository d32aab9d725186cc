// scale peer: the fork/join and yield workloads of bench/scale (the shape:
// bench/scale/scale_shape.hpp, same flags and defaults) with
// goroutines, at GOMAXPROCS=1 and at --procs (the figure), so the speedup
// comes from the same run.
//
//	-mode=forkjoin : binary trees of spawns, each node starting one child
//	                 goroutine, computing its other subtree itself and
//	                 waiting for the child (a channel); goroutines per second.
//	-mode=yield    : --fibers goroutines each call runtime.Gosched()
//	                 --yields times; yields per second.
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

func tree(depth int) int64 {
	if depth == 0 {
		return 1
	}
	done := make(chan int64, 1)
	go func() { done <- tree(depth - 1) }()
	mine := tree(depth - 1)
	return mine + <-done
}

// Spawns per second over `trees` trees of `depth`.
func forkjoin(depth, trees int) float64 {
	start := time.Now()
	for t := 0; t < trees; t++ {
		if tree(depth) != int64(1)<<depth {
			os.Exit(1)
		}
	}
	spawns := float64(trees) * float64((int64(1)<<depth)-1)
	return spawns / time.Since(start).Seconds()
}

func yields(fibers, each int) float64 {
	var wg sync.WaitGroup
	wg.Add(fibers)
	start := time.Now()
	for i := 0; i < fibers; i++ {
		go func() {
			for k := 0; k < each; k++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(fibers) * float64(each) / time.Since(start).Seconds()
}

func main() {
	mode := flag.String("mode", "forkjoin", "forkjoin or yield")
	procs := flag.Int("procs", 2, "GOMAXPROCS of the figure")
	depth := flag.Int("depth", 12, "forkjoin: tree depth")
	trees := flag.Int("trees", 50, "forkjoin: trees per repetition")
	fibers := flag.Int("fibers", 64, "yield: goroutines")
	each := flag.Int("yields", 20000, "yield: yields per goroutine")
	reps := flag.Int("reps", 3, "repetitions (the best is reported)")
	flag.Parse()
	measure := func(p int) float64 {
		runtime.GOMAXPROCS(p)
		if *mode == "forkjoin" {
			forkjoin(*depth, *trees/10) // warm-up: a tenth, as bench/scale/scale_shape.hpp
			return -benchutil.BestOf(*reps, func() float64 { return -forkjoin(*depth, *trees) })
		}
		yields(*fibers, *each/10)
		return -benchutil.BestOf(*reps, func() float64 { return -yields(*fibers, *each) })
	}
	one := measure(1)
	many := measure(*procs)
	benchutil.PrintResult(many, map[string]interface{}{
		"procs": *procs, "one_proc": one, "go": runtime.Version(),
		"note": fmt.Sprintf("GOMAXPROCS=1: %.3g/s; speedup at %d: %.2fx", one, *procs, many/one),
	})
}
