//! spawn-ns peer: Tokio tasks on a current_thread runtime, spawned with
//! `tokio::spawn` and awaited through their JoinHandle, --count of them in
//! batches of --batch; nanoseconds per task.

use spindle_bench_tokio::{arg, best_of, ns_per, print_result, runtime};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static RAN: AtomicU64 = AtomicU64::new(0);

async fn once(count: u64, batch: u64) -> f64 {
    let mut handles = Vec::with_capacity(batch as usize);
    RAN.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        for _ in 0..n {
            handles.push(tokio::spawn(async {
                RAN.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in handles.drain(..) {
            h.await.expect("task");
        }
        done += n;
    }
    let ns = ns_per(start, count);
    assert_eq!(RAN.load(Ordering::Relaxed), count);
    ns
}

fn main() {
    let count = arg("count", 1_000_000);
    let batch = arg("batch", 1_000);
    let reps = arg("reps", 3);
    let rt = runtime();
    rt.block_on(once(count / 10, batch)); // warm-up
    let best = best_of(reps, || rt.block_on(once(count, batch)));
    print_result(best, &format!("\"count\": {count}"));
}
