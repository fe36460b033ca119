//! Wiring: the process's open-file limit, and the connection cap that fits under it. Every
//! connection holds a file descriptor; so do the database pool, the log and the runtime. Part
//! of start-up, beside `config`: the binary raises the limit once and sizes the HTTP server
//! from it.

/// Descriptors kept back from connections: the database pool's, plus this many for
/// everything else (the runtime, logs, outbound calls).
const RESERVED: u64 = 128;

/// The default cap, however high the limit: enough for any client population this service
/// expects, small enough that a flood of idle connections can't use much memory.
pub const DEFAULT_CAP_CEILING: usize = 10_000;

/// Raises the soft limit on open files to the hard limit, and returns the limit now in
/// force (the old one if raising failed, which is logged).
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            let current = rlimit::Resource::NOFILE
                .get()
                .map(|(soft, _)| soft)
                .unwrap_or(1024);
            tracing::warn!(%error, limit = current, "can't raise the open-file limit");
            current
        }
    }
}

/// The most connections that leave room under `limit` for `pool_size` database connections
/// and the rest of the process: a quarter of the limit at least is kept back.
pub fn room_for_connections(limit: u64, pool_size: u32) -> usize {
    let reserved = (RESERVED + u64::from(pool_size)).max(limit / 4);
    usize::try_from(limit.saturating_sub(reserved))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The cap to serve with: `configured` if it fits under the limit, else an error saying what
/// does; by default, what fits, at most [`DEFAULT_CAP_CEILING`].
pub fn connection_cap(
    configured: Option<usize>,
    limit: u64,
    pool_size: u32,
) -> Result<usize, String> {
    let room = room_for_connections(limit, pool_size);
    match configured {
        None => Ok(room.min(DEFAULT_CAP_CEILING)),
        Some(cap) if cap <= room => Ok(cap),
        Some(cap) => Err(format!(
            "HTTP_MAX_CONNECTIONS: {cap} connections don't fit under the open-file limit of \
             {limit} with a pool of {pool_size}; at most {room} do (raise `ulimit -n` or lower \
             the value)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_pool_and_the_process() {
        assert_eq!(room_for_connections(1024, 16), 1024 - 256);
        assert_eq!(room_for_connections(65_536, 16), 65_536 - 16_384);
        assert_eq!(room_for_connections(256, 16), 256 - 144);
        assert_eq!(room_for_connections(100, 16), 1);
    }

    #[test]
    fn the_default_is_what_fits_up_to_the_ceiling() {
        assert_eq!(connection_cap(None, 1024, 16), Ok(768));
        assert_eq!(connection_cap(None, 1 << 20, 16), Ok(DEFAULT_CAP_CEILING));
    }

    #[test]
    fn a_configured_cap_must_fit() {
        assert_eq!(connection_cap(Some(500), 1024, 16), Ok(500));
        let error = connection_cap(Some(900), 1024, 16).unwrap_err();
        assert!(error.starts_with("HTTP_MAX_CONNECTIONS"), "{error}");
        assert!(error.contains("at most 768"), "{error}");
    }

    #[test]
    fn raising_keeps_a_usable_limit() {
        let limit = raise_limit();
        assert!(limit >= 16, "{limit}");
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(soft, limit);
    }
}
