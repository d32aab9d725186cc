//! echo peer: the Tokio echo server of the echo benchmark, on a
//! current_thread runtime with the I/O driver: a task per connection that
//! reads into its buffer and writes it back. Prints "ready" once it listens
//! on 127.0.0.1:PORT.

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
    if port == 0 || port > 65535 {
        eprintln!("usage: echo --port P");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
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
