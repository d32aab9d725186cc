//! What the Tokio benchmark peers share: best-of-N timing, memory figures
//! from /proc/self/status, and the one JSON line each program prints for
//! bench/run.py.

use std::time::Instant;

/// `--name value` or `--name=value` from the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let flag = format!("--{name}");
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        let value = if *a == flag {
            i += 1;
            args.get(i).cloned()
        } else if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            Some(v.to_string())
        } else {
            None
        };
        if let Some(v) = value {
            return v.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {flag} {v}");
                std::process::exit(2)
            });
        }
        i += 1;
    }
    default
}

/// Runs `once` (nanoseconds per operation) `reps` times; the smallest figure.
pub fn best_of(reps: u64, mut once: impl FnMut() -> f64) -> f64 {
    (0..reps).map(|_| once()).fold(f64::INFINITY, f64::min)
}

/// Nanoseconds per operation since `start`.
pub fn ns_per(start: Instant, ops: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// Prints `{"value": value, <extra>}`; `extra` is preformatted JSON members.
pub fn print_result(value: f64, extra: &str) {
    if extra.is_empty() {
        println!("{{\"value\": {value:.4}}}");
    } else {
        println!("{{\"value\": {value:.4}, {extra}}}");
    }
}

/// A current-thread Tokio runtime (no I/O or time driver needed).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}
