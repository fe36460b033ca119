//! The HTTP load loop: a number of keep-alive clients sending requests back to back for a fixed
//! time, each latency recorded in an HDR histogram (microseconds, 1 µs to 60 s, 3 significant
//! digits), so the percentiles are exact to 0.1% without keeping every sample.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// An empty latency histogram with the bounds every run uses, so histograms can be added.
pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap()
}

/// Throughput and latency of one HTTP load run.
pub struct Measured {
    pub ok: u64,
    pub errors: u64,
    pub per_second: f64,
    pub histogram: Histogram<u64>,
}

impl Measured {
    /// The latency at `quantile`, in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `clients` keep-alive clients for `seconds`; `request(i)` builds the i-th request
/// (numbered across all clients), or `None` to stop that client early, and `expect` is the
/// status that counts as success. Only successes are timed: an error's latency says nothing
/// about the operation measured.
pub async fn drive<F>(clients: usize, seconds: f64, expect: u16, request: F) -> Measured
where
    F: Fn(&reqwest::Client, u64) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds");
    let request = Arc::new(request);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, request, counter) =
            (client.clone(), Arc::clone(&request), Arc::clone(&counter));
        tasks.push(tokio::spawn(async move {
            let mut histogram = histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let Some(builder) = request(&client, n) else {
                    break;
                };
                let t = Instant::now();
                match builder.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        // Read the body so the connection goes back to the pool for the next
                        // request, as a real client's would.
                        let _ = r.bytes().await;
                        if status == expect {
                            ok += 1;
                            histogram.saturating_record(t.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (ok, errors, histogram)
        }));
    }
    let mut total = histogram();
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        let (o, e, h) = task.await.expect("client task");
        ok += o;
        errors += e;
        total.add(h).expect("histograms add");
    }
    let elapsed = started.elapsed().as_secs_f64();
    Measured {
        ok,
        errors,
        per_second: ok as f64 / elapsed,
        histogram: total,
    }
}
