//! The release server as a child process: started on a free port against the bench database,
//! waited for until healthy, killed when dropped (also when the run fails half-way), and asked
//! for its peak memory at the end.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

impl Server {
    /// Starts `bin serve` with a pool of `pool` connections and the variables `env` (e.g.
    /// `METRICS=off`), and waits up to 10 s for `/healthz`.
    pub async fn start_with(
        bin: &str,
        database_url: &str,
        pool: usize,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        // Let the kernel pick a free port, then hand it to the server. Another process could
        // take it in between; the health check below would then fail the run, not hang it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        drop(listener);
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", addr.to_string())
            .env("DATABASE_POOL_SIZE", pool.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("can't start {bin}: {e}"))?;
        let server = Self {
            child,
            base: format!("http://{addr}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not become healthy".to_owned())
    }

    /// Peak resident set size so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
