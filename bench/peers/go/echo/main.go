// echo peer: the Go echo server of the echo benchmark, a goroutine per
// connection (net.Conn Read then Write of what was read), run with
// GOMAXPROCS=1. Prints "ready" once it listens on 127.0.0.1:PORT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1")
	flag.Parse()
	if *port <= 0 {
		fmt.Fprintln(os.Stderr, "usage: echo --port P")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Go sets TCP_NODELAY on TCP connections by default.
		go serve(c)
	}
}
