//! Inbound adapter end to end: HTTP over a real socket, run against both stores. `walks` are
//! the business walks of the README; `errors` reaches every error code of the contract; `users`
//! walks the user directory (role changes and inactive users against running instances);
//! `connections` holds the server to its time-outs and its cap on connections; `request_ids`
//! checks that every answer carries an `x-request-id`.

/// Generates, for each walk, a test on the in-memory store (`memory::<walk>`) and one on a fresh
/// PostgreSQL database (`postgres::<walk>`), both served with the demo data loaded.
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut app = $crate::helpers::spawn_memory().await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut app = $crate::helpers::spawn_pg().await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            )+
        }
    };
}

mod connections;
mod errors;
mod metrics;
mod request_ids;
mod users;
mod walks;
