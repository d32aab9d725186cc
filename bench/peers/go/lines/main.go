// lines-mbps peer: the same file split with bufio.Scanner (ScanLines, the
// default split; its buffer may grow to 1 MiB, spindle's default line
// limit) on an os.File, counting the lines and their bytes (checked). MiB
// of file per second, the best of -reps after an untimed pass.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"spindle.bench/peers/internal/benchutil"
)

func fail(what string) {
	fmt.Fprintln(os.Stderr, "check failed:", what)
	os.Exit(1)
}

func main() {
	path := flag.String("file", "", "the file")
	wantLines := flag.Uint64("lines", 0, "expected lines (0: unchecked)")
	wantBytes := flag.Uint64("bytes", 0, "expected bytes in lines (0: unchecked)")
	reps := flag.Int("reps", 3, "repetitions")
	flag.Parse()
	if *path == "" {
		fail("-file PATH")
	}
	once := func() float64 {
		start := time.Now()
		f, err := os.Open(*path)
		if err != nil {
			fail(err.Error())
		}
		defer f.Close()
		scanner := bufio.NewScanner(f)
		scanner.Buffer(make([]byte, 64*1024), 1<<20)
		var lines, bytes uint64
		for scanner.Scan() {
			lines++
			bytes += uint64(len(scanner.Bytes()))
		}
		if err := scanner.Err(); err != nil {
			fail(err.Error())
		}
		secs := time.Since(start).Seconds()
		if *wantLines != 0 && lines != *wantLines {
			fail("the number of lines")
		}
		if *wantBytes != 0 && bytes != *wantBytes {
			fail("the bytes in lines")
		}
		size := lines + bytes // every line ends with '\n'
		return float64(size) / (1024 * 1024) / secs
	}
	once() // warm-up
	best := -benchutil.BestOf(*reps, func() float64 { return -once() })
	benchutil.PrintResult(best, nil)
}
