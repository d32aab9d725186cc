#!/usr/bin/env python3
"""Runs one of the net examples as a user would and checks what it does.

    run_example.py NAME --bin-dir DIR

NAME is echo_server, chat_server, proxy, dns_lookup, file_server or tls_echo. Servers
are started on 127.0.0.1 port 0; the first line they print says where they
listen. Exit status: 0 passed, 1 failed, 77 skipped (the reason is printed).
The backend comes from SPINDLE_BACKEND, which the examples inherit.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 30  # seconds for any single wait: generous for a loaded machine


class Skip(Exception):
    pass


class Server:
    """A running example server; stopped (and its stderr shown) on exit."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.wait(timeout=TIMEOUT)
            err = self.proc.stderr.read()
            if "io_uring" in err and os.environ.get("SPINDLE_BACKEND") == "io_uring":
                raise Skip("io_uring is not available here: " + err.strip())
            raise AssertionError(f"{argv[0]} did not start: {line!r} {err!r}")
        host, _, port = line.split()[-1].rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.endpoint = line.split()[-1]

    def stop(self):
        """Stops the server; fails if it had already stopped on its own
        (an error that escaped, a sanitizer report)."""
        early = self.proc.poll()
        if early is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read()
        if err:
            sys.stderr.write(f"[{os.path.basename(self.argv[0])} stderr]\n{err}")
        if early is not None:
            raise AssertionError(f"{self.argv[0]} exited by itself with status {early}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        try:
            self.stop()
        except AssertionError:
            if exc_type is None:
                raise


def closed_endpoint():
    """A loopback port nobody listens on. (Not that of a server just
    stopped: its listening socket may linger in the kernel a moment while
    its io_uring is torn down.)"""
    with socket.socket() as gone:
        gone.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{gone.getsockname()[1]}"


def connect(address):
    s = socket.create_connection(address, timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"end of stream after {len(data)} of {n} bytes")
        data += chunk
    return data


class Lines:
    """Reads lines from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"end of stream; unfinished: {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def expect(self, wanted):
        """Reads lines until `wanted` (other lines are allowed before it)."""
        seen = []
        while True:
            line = self.line()
            if line == wanted:
                return
            seen.append(line)
            if len(seen) > 20:
                raise AssertionError(f"no {wanted!r} among {seen!r}")


def expect_eq(got, wanted, what):
    if got != wanted:
        raise AssertionError(f"{what}: got {got!r}, wanted {wanted!r}")


def test_echo_server(bins):
    with Server([bins("echo_server"), "127.0.0.1:0"]) as server:
        out = subprocess.run([bins("echo_client"), server.endpoint, "hello", "two words"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        expect_eq(out.returncode, 0, f"echo_client status ({out.stderr})")
        expect_eq(out.stdout, "hello\ntwo words\n", "echo_client output")
        # Lines from standard input, by a name (localhost) instead of an address.
        out = subprocess.run([bins("echo_client"), f"localhost:{server.address[1]}"],
                             input="from stdin\n", capture_output=True, text=True,
                             timeout=TIMEOUT)
        expect_eq(out.stdout, "from stdin\n", f"echo_client by name ({out.stderr})")
        # Many clients at once, a megabyte each.
        socks = [connect(server.address) for _ in range(20)]
        payload = os.urandom(1 << 20)
        for s in socks:
            s.sendall(payload[:65536])
        for s in socks:
            expect_eq(recv_exactly(s, 65536), payload[:65536], "echo")
            s.close()
        s = connect(server.address)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        expect_eq(recv_exactly(s, len(payload)), payload, "1 MiB echo")
        expect_eq(s.recv(1), b"", "end of stream after the echo")
    # A client with no server to talk to.
    out = subprocess.run([bins("echo_client"), closed_endpoint(), "x"], capture_output=True,
                         text=True, timeout=TIMEOUT)
    expect_eq(out.returncode, 1, "echo_client status without a server")
    if "Connection refused" not in out.stderr:
        raise AssertionError(f"echo_client error: {out.stderr!r}")


def test_chat_server(bins):
    with Server([bins("chat_server"), "127.0.0.1:0"]) as server:
        people = {}
        for name in ("alice", "bob", "carol"):
            s = connect(server.address)
            s.sendall(f"{name}\n".encode())
            people[name] = Lines(s)
            people[name].expect(f"* welcome {name}, {len(people)} here")
        people["alice"].expect("* bob joined")
        people["alice"].sock.sendall(b"hello everyone\n")
        people["bob"].expect("alice: hello everyone")
        people["carol"].expect("alice: hello everyone")
        # A clean disconnect is announced to the others.
        people["carol"].sock.close()
        people["alice"].expect("* carol left")
        people["bob"].expect("* carol left")
        people["bob"].sock.sendall(b"bye\n")
        people["alice"].expect("bob: bye")
        # A line over the limit (4 KiB) ends that member only.
        people["bob"].sock.sendall(b"x" * 10000 + b"\n")
        people["alice"].expect("* bob left")
        people["alice"].sock.sendall(b"still here\n")
        dave = connect(server.address)
        dave.sendall(b"dave\n")
        Lines(dave).expect("* welcome dave, 2 here")
        people["alice"].expect("* dave joined")
        for p in people.values():
            p.sock.close()
        dave.close()


def test_proxy(bins):
    with Server([bins("echo_server"), "127.0.0.1:0"]) as echo:
        with Server([bins("proxy"), "127.0.0.1:0", echo.endpoint]) as proxy:
            payload = os.urandom(3 << 20)
            socks = [connect(proxy.address) for _ in range(4)]
            for s in socks:
                s.sendall(payload[:100000])
            for s in socks:
                expect_eq(recv_exactly(s, 100000), payload[:100000], "through the proxy")
                s.close()
            s = connect(proxy.address)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # the proxy passes the half-close on
            expect_eq(recv_exactly(s, len(payload)), payload, "3 MiB through the proxy")
            expect_eq(s.recv(1), b"", "end of stream through the proxy")
    # Upstream gone: the client's connection is closed, the proxy goes on.
    with Server([bins("proxy"), "127.0.0.1:0", closed_endpoint()]) as proxy:
        for _ in range(2):
            s = connect(proxy.address)
            expect_eq(s.recv(1), b"", "a client of a proxy whose upstream is gone")
            s.close()


def find_dnsmasq():
    path = "/usr/sbin:/sbin:" + os.environ.get("PATH", "")
    return shutil.which("dnsmasq", path=path)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


def test_dns_lookup(bins):
    dnsmasq = find_dnsmasq()
    if not dnsmasq:
        raise Skip("dnsmasq is not installed (scripts/install-deps.sh installs it)")
    port = free_port()
    proc = subprocess.Popen([dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                             "--conf-file=/dev/null", "--pid-file", "--bind-interfaces",
                             "--listen-address=127.0.0.1", f"--port={port}",
                             "--log-facility=-", "--local=/test/",
                             "--address=/x.test/10.1.2.3",
                             "--host-record=dual.test,127.0.0.1,::1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if proc.poll() is not None:
                raise Skip("dnsmasq could not start: " + proc.stderr.read().strip())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Skip("dnsmasq did not start listening")
                time.sleep(0.05)
        server = f"127.0.0.1:{port}"
        out = subprocess.run([bins("dns_lookup"), "--server", server, "--no-hosts", "x.test",
                              "dual.test", "10.0.0.7"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        expect_eq(out.returncode, 0, f"dns_lookup status ({out.stderr})")
        lines = out.stdout.splitlines()
        expect_eq(lines[0], "x.test 10.1.2.3", "x.test")
        expect_eq(sorted(lines[1].split()[1:]), ["127.0.0.1", "::1"], "dual.test")
        expect_eq(lines[2], "10.0.0.7 10.0.0.7", "a literal")
        out = subprocess.run([bins("dns_lookup"), "--server", server, "-4", "dual.test",
                              "nope.test"], capture_output=True, text=True, timeout=TIMEOUT)
        expect_eq(out.returncode, 1, "dns_lookup status with a missing name")
        expect_eq(out.stdout, "dual.test 127.0.0.1\n", "-4")
        if 'resolve "nope.test": Domain name not found' not in out.stderr:
            raise AssertionError(f"dns_lookup error: {out.stderr!r}")
        # A server that never answers: the timeout.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            out = subprocess.run([bins("dns_lookup"), "--server",
                                  f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "300",
                                  "x.test"], capture_output=True, text=True, timeout=TIMEOUT)
        expect_eq(out.returncode, 1, "dns_lookup status with a silent server")
        if "no answer within the timeout" not in out.stderr:
            raise AssertionError(f"dns_lookup timeout: {out.stderr!r}")
        out = subprocess.run([bins("dns_lookup")], capture_output=True, text=True,
                             timeout=TIMEOUT)
        expect_eq(out.returncode, 2, "dns_lookup without arguments")
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


def test_file_server(bins):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "sub"))
        big = os.urandom(5 << 20)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(big)
        with open(os.path.join(root, "sub", "a.txt"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(tmp, "secret.txt"), "w") as f:
            f.write("outside\n")
        open(os.path.join(root, "empty"), "w").close()
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "escape"))
        os.symlink("sub/a.txt", os.path.join(root, "inside"))
        with Server([bins("file_server"), root, "127.0.0.1:0"]) as server:
            s = connect(server.address)
            lines = Lines(s)

            def get(path):
                s.sendall(path.encode() + b"\n")
                head = lines.line()
                if not head.startswith("OK "):
                    return head
                n = int(head[3:])
                data = lines.buf[:n]
                lines.buf = lines.buf[n:]
                if len(data) < n:
                    data += recv_exactly(s, n - len(data))
                return data

            expect_eq(get("sub/a.txt"), b"hello\n", "sub/a.txt")
            expect_eq(get("/sub/./a.txt"), b"hello\n", "a leading slash is the root")
            expect_eq(get("big.bin"), big, "a 5 MiB file")
            expect_eq(get("empty"), b"", "an empty file")
            expect_eq(get("inside"), b"hello\n", "a link that stays inside")
            expect_eq(get("../secret.txt"), "ERR path leaves the served directory", "..")
            expect_eq(get("sub/../../secret.txt"), "ERR path leaves the served directory",
                      "sub/../..")
            expect_eq(get("escape"), "ERR path leaves the served directory", "a link out")
            expect_eq(get("missing"), "ERR No such file or directory", "a missing file")
            expect_eq(get("sub"), "ERR not a regular file", "a directory")
            expect_eq(get(""), "ERR path leaves the served directory", "an empty path")
            expect_eq(get("sub/a.txt"), b"hello\n", "the connection still works")
            s.close()
            # An overlong request line ends that connection only.
            s = connect(server.address)
            s.sendall(b"a" * 10000 + b"\n")
            try:
                expect_eq(s.recv(1), b"", "a request line over the limit")
            except ConnectionResetError:
                pass
            s.close()
            s = connect(server.address)
            lines = Lines(s)
            expect_eq(get("sub/a.txt"), b"hello\n", "a new connection after that")
            s.close()


def make_test_pki(tmp):
    """A CA and a certificate it signs for localhost and 127.0.0.1, made with
    the openssl command; returns the file names."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise Skip("the openssl command is not installed (scripts/install-deps.sh installs it)")
    f = {n: os.path.join(tmp, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key",
                                            "server.csr", "ext.cnf")}
    with open(f["ext.cnf"], "w") as ext:
        ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    steps = [
        ["req", "-x509", *ec, "-subj", "/CN=tls_echo test CA", "-days", "1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign", "-keyout", f["ca.key"], "-out", f["ca.pem"]],
        ["req", *ec, "-subj", "/CN=localhost", "-keyout", f["server.key"], "-out", f["server.csr"]],
        ["x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
         "-CAcreateserial", "-days", "1", "-extfile", f["ext.cnf"], "-out", f["server.pem"]],
    ]
    for step in steps:
        subprocess.run([openssl, *step], check=True, capture_output=True, timeout=TIMEOUT)
    return f


def test_tls_echo(bins):
    import ssl
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        with Server([bins("tls_echo"), "server", "127.0.0.1:0", "--cert", pki["server.pem"],
                     "--key", pki["server.key"]]) as server:
            port = server.address[1]

            def client(*args, **kw):
                return subprocess.run([bins("tls_echo"), "client", *args], capture_output=True,
                                      text=True, timeout=TIMEOUT, **kw)

            out = client(f"localhost:{port}", "--ca", pki["ca.pem"], "hello", "two words")
            expect_eq(out.returncode, 0, f"tls_echo client status ({out.stderr})")
            expect_eq(out.stdout, "hello\ntwo words\n", "tls_echo client output")
            out = client(server.endpoint, "--ca", pki["ca.pem"], input="from stdin\n")
            expect_eq(out.stdout, "from stdin\n", f"by address, from stdin ({out.stderr})")
            # The errors a user meets: a CA it does not know, another name.
            out = client(f"localhost:{port}", "x")
            expect_eq(out.returncode, 1, "status against an unknown CA")
            wanted = ("tls_echo: TLS handshake with localhost: certificate verify failed "
                      "(unable to get local issuer certificate)\n")
            expect_eq(out.stderr, wanted, "unknown CA")
            out = client(f"localhost:{port}", "--ca", pki["ca.pem"], "--name", "other.test", "x")
            expect_eq(out.stderr, "tls_echo: TLS handshake with other.test: certificate verify "
                      "failed (hostname mismatch)\n", "another name")
            # Plain text to a TLS server: that connection fails, the server goes on.
            s = connect(server.address)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            s.close()
            # Python's ssl module as the client: 2 MiB there and back.
            context = ssl.create_default_context(cafile=pki["ca.pem"])
            with context.wrap_socket(connect(server.address), server_hostname="localhost") as t:
                payload = os.urandom(2 << 20)
                t.sendall(payload)
                expect_eq(recv_exactly(t, len(payload)), payload, "2 MiB over TLS")
                t.unwrap()  # close_notify, and the server's in return
            # openssl s_client as the client (it stays until killed: -quiet
            # ignores the end of its input).
            proc = subprocess.Popen(["timeout", str(TIMEOUT), "openssl", "s_client", "-connect",
                                     f"127.0.0.1:{port}", "-servername", "localhost",
                                     "-CAfile", pki["ca.pem"], "-verify_return_error", "-quiet"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            proc.stdin.write("via s_client\n")
            proc.stdin.flush()
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if line == "via s_client\n":
                    break
            proc.kill()
            proc.wait()
            if "via s_client\n" not in seen:
                raise AssertionError(f"s_client got no echo: {seen!r}")
        # What the server said about the plain-text client: Server.stop()
        # printed its stderr; the connection's error is one line of it.


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--bin-dir", required=True)
    args = parser.parse_args()
    test = globals().get("test_" + args.name)
    if test is None:
        print(f"run_example.py: no example {args.name!r}", file=sys.stderr)
        return 2

    def bins(name):
        return os.path.join(args.bin_dir, name)

    try:
        test(bins)
    except Skip as e:
        print(f"SKIPPED: {e}")
        return 77
    except AssertionError as e:
        print(f"FAILED: {args.name}: {e}")
        return 1
    print(f"passed: {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
