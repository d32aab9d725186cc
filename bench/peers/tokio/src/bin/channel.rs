//! channel-rtt-ns peer: two Tokio tasks on a current_thread runtime
//! ping-pong an integer over two `tokio::sync::mpsc` channels of capacity 1
//! (Tokio has no unbuffered channel); nanoseconds per round trip.

use spindle_bench_tokio::{arg, best_of, ns_per, print_result, runtime};
use std::time::Instant;
use tokio::sync::mpsc;

async fn once(trips: u64) -> f64 {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let start = Instant::now();
    let echo = tokio::spawn(async move {
        for _ in 0..trips {
            let v = ping_rx.recv().await.expect("ping");
            pong_tx.send(v + 1).await.expect("pong");
        }
    });
    let mut sum = 0u64;
    for i in 0..trips {
        ping_tx.send(i).await.expect("send");
        sum += pong_rx.recv().await.expect("recv");
    }
    echo.await.expect("echo task");
    let ns = ns_per(start, trips);
    assert_eq!(sum, trips * (trips + 1) / 2);
    ns
}

fn main() {
    let trips = arg("trips", 1_000_000);
    let reps = arg("reps", 5);
    let rt = runtime();
    rt.block_on(once(trips / 10)); // warm-up
    let best = best_of(reps, || rt.block_on(once(trips)));
    print_result(best, &format!("\"trips\": {trips}"));
}
