//! switch-ns peer: two Tokio tasks on a current_thread runtime call
//! `tokio::task::yield_now().await` in turn; nanoseconds per yield.

use spindle_bench_tokio::{arg, best_of, ns_per, print_result, runtime};
use std::time::Instant;

async fn once(yields: u64) -> f64 {
    let each = yields / 2;
    let body = move || async move {
        for _ in 0..each {
            tokio::task::yield_now().await;
        }
    };
    let start = Instant::now();
    let a = tokio::spawn(body());
    let b = tokio::spawn(body());
    a.await.expect("task a");
    b.await.expect("task b");
    ns_per(start, 2 * each)
}

fn main() {
    let switches = arg("switches", 10_000_000);
    let reps = arg("reps", 5);
    let rt = runtime();
    rt.block_on(once(switches / 10)); // warm-up
    let best = best_of(reps, || rt.block_on(once(switches)));
    print_result(best, &format!("\"switches\": {switches}"));
}
