//! echo peer: the Tokio echo server of the echo benchmark, on a
//! current_thread runtime with the I/O driver (`--workers 1`, the default)
//! or a multi_thread runtime with `--workers N` worker threads: a task per
//! connection that reads into its buffer and writes it back. Prints "ready"
//! once it listens on 127.0.0.1:PORT.

use spindle_bench_tokio::arg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut socket: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let port = arg("port", 0);
    let workers = arg("workers", 1);
    if port == 0 || port > 65535 || workers == 0 || workers > 1024 {
        eprintln!("usage: echo --port P [--workers N]");
        std::process::exit(2);
    }
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers as usize);
        b
    };
    let rt = builder.enable_io().build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port as u16))
            .await
            .expect("bind");
        println!("ready");
        loop {
            let (socket, _) = listener.accept().await.expect("accept");
            socket.set_nodelay(true).expect("TCP_NODELAY");
            tokio::spawn(serve(socket));
        }
    });
}
