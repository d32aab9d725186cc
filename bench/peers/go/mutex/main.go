// mutex-cpu-ops / mutex-io-ops peer: sync.Mutex, groups of worker goroutines
// on one processor (GOMAXPROCS=1), the shape of bench/mutex/mutex_shape.hpp;
// the io write is (*os.File).Write. Operations per second.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

const lcgSteps = 100

func lcg(x uint64) uint64 {
	for i := 0; i < lcgSteps; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

var line = []byte("spindle mutex benchmark: one small write under the lock.......\n")

type group struct {
	mu    sync.Mutex
	state uint64
	f     *os.File
}

func fail(what string) {
	fmt.Fprintln(os.Stderr, "check failed:", what)
	os.Exit(1)
}

func once(io bool, groups, workers, ops int, dir string) float64 {
	gs := make([]*group, groups)
	for g := range gs {
		gs[g] = &group{state: 1}
		if io {
			path := dir + "/spindle-bench-mutex-go-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(g)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0600)
			if err != nil {
				fail(err.Error())
			}
			os.Remove(path)
			gs[g].f = f
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, g := range gs {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(g *group) {
				for i := 0; i < ops; i++ {
					g.mu.Lock()
					if io {
						if n, err := g.f.Write(line); err != nil || n != len(line) {
							fail("write")
						}
					} else {
						g.state = lcg(g.state)
					}
					g.mu.Unlock()
				}
				wg.Done()
			}(g)
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	want := uint64(1)
	if !io {
		for i := 0; i < workers*ops; i++ {
			want = lcg(want)
		}
	}
	for _, g := range gs {
		if io {
			st, err := g.f.Stat()
			if err != nil || st.Size() != int64(workers*ops*len(line)) {
				fail("file size")
			}
			g.f.Close()
		} else if g.state != want {
			fail("state")
		}
	}
	return float64(groups*workers*ops) / secs
}

func main() {
	mode := flag.String("mode", "cpu", "cpu or io")
	groups := flag.Int("groups", 10, "groups")
	workers := flag.Int("workers", 10, "workers per group")
	ops := flag.Int("ops", 0, "operations per worker (default 2000 cpu, 200 io)")
	reps := flag.Int("reps", 3, "repetitions (the best is reported)")
	dir := flag.String("dir", os.TempDir(), "where the io files go")
	flag.Parse()
	io := *mode == "io"
	if *mode != "cpu" && !io {
		fail("--mode cpu|io")
	}
	if *ops == 0 {
		*ops = 2000
		if io {
			*ops = 200
		}
	}
	runtime.GOMAXPROCS(1)
	once(io, *groups, *workers, *ops/10, *dir) // warm-up
	best := -benchutil.BestOf(*reps, func() float64 { return -once(io, *groups, *workers, *ops, *dir) })
	benchutil.PrintResult(best, map[string]interface{}{
		"mode": *mode, "groups": *groups, "workers": *workers, "ops": *ops,
		"gomaxprocs": runtime.GOMAXPROCS(0), "go": runtime.Version(),
	})
}
