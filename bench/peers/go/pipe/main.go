// pipe-* / socketpair-* peer: per group a reader and a writer goroutine on
// one processor (GOMAXPROCS=1), the shape of bench/pipe/pipe_shape.hpp. A
// pipe is os.Pipe; a socketpair is syscall.Socketpair made into net.Conns
// (net.FileConn), both on Go's poller. Messages per second.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func fail(what string) {
	fmt.Fprintln(os.Stderr, "check failed:", what)
	os.Exit(1)
}

// pair returns a reader and a writer end.
func pair(kind string) (io.ReadCloser, io.WriteCloser) {
	if kind == "pipe" {
		r, w, err := os.Pipe()
		if err != nil {
			fail(err.Error())
		}
		return r, w
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fail(err.Error())
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f) // dups the fd
		if err != nil {
			fail(err.Error())
		}
		f.Close()
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

func valid(data []byte, at, size uint64) bool {
	n := uint64(len(data))
	return n > 0 && data[0] == byte(at/size) && data[n-1] == byte((at+n-1)/size)
}

func once(kind string, groups, size, messages uint64) float64 {
	type ends struct {
		r io.ReadCloser
		w io.WriteCloser
	}
	pairs := make([]ends, groups)
	for g := range pairs {
		r, w := pair(kind)
		pairs[g] = ends{r, w}
	}
	total := messages * size
	var wg sync.WaitGroup
	start := time.Now()
	for _, p := range pairs {
		p := p
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for got := uint64(0); got < total; {
				n, err := p.r.Read(buf)
				if err != nil || !valid(buf[:n], got, size) {
					fail("read")
				}
				got += uint64(n)
			}
		}()
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			for i := uint64(0); i < messages; i++ {
				for k := range msg {
					msg[k] = byte(i)
				}
				if _, err := p.w.Write(msg); err != nil {
					fail("write")
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, p := range pairs {
		p.r.Close()
		p.w.Close()
	}
	return float64(groups*messages) / secs
}

func main() {
	kind := flag.String("kind", "pipe", "pipe or socketpair")
	groups := flag.Uint64("groups", 10, "reader/writer groups")
	size := flag.Uint64("size", 64, "message bytes")
	messages := flag.Uint64("messages", 20000, "messages per group")
	reps := flag.Int("reps", 3, "repetitions")
	flag.Parse()
	if *kind != "pipe" && *kind != "socketpair" {
		fail("--kind pipe|socketpair")
	}
	once(*kind, *groups, *size, *messages/10) // warm-up
	best := -benchutil.BestOf(*reps, func() float64 { return -once(*kind, *groups, *size, *messages) })
	benchutil.PrintResult(best, map[string]interface{}{
		"mib_s": best * float64(*size) / (1024 * 1024), "kind": *kind, "groups": *groups,
		"size": *size, "messages": *messages,
	})
}
