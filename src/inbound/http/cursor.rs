//! Driving adapter, HTTP: the opaque page cursors (`next`, passed back as `after`).
//!
//! A cursor is a wire format, so it lives here: the domain pages by a position (an instance id
//! for a search, an activation time and step id for an inbox); the client gets that position
//! wrapped as an opaque token, URL-safe base64 of `v1:<n>.<n>...:<check>`, so that it can't come
//! to depend on what is inside, and the format can change (a new version tag) without breaking
//! clients that pass `next` back unchanged. The check (FNV-1a of the rest, in hex) makes a
//! changed or truncated token a clear 422 rather than a silently different page; it is no
//! secret and needn't be: a cursor grants nothing, it only names a position.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::errors::ApiError;

/// The version tag inside every cursor this API hands out.
const VERSION: &str = "v1:";

/// The token for a position of `fields`.
pub fn encode(fields: &[i64]) -> String {
    let numbers: Vec<String> = fields.iter().map(i64::to_string).collect();
    let body = format!("{VERSION}{}", numbers.join("."));
    URL_SAFE_NO_PAD.encode(format!("{body}:{:08x}", fnv1a(&body)))
}

/// The `N` fields inside a token this API handed out; anything else (not base64, another
/// version, another number of fields, a changed or truncated token, a number not spelled as the
/// encoder spells it) is 422 naming `parameter`.
pub fn decode<const N: usize>(token: &str, parameter: &str) -> Result<[i64; N], ApiError> {
    let refused = || refused(parameter);
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| refused())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| refused())?;
    let (body, check) = text.rsplit_once(':').ok_or_else(refused)?;
    if check != format!("{:08x}", fnv1a(body)) {
        return Err(refused());
    }
    let numbers = body.strip_prefix(VERSION).ok_or_else(refused)?;
    let mut fields = [0; N];
    let mut parts = numbers.split('.');
    for field in &mut fields {
        let part = parts.next().ok_or_else(refused)?;
        let n = part.parse::<i64>().map_err(|_| refused())?;
        // Only the canonical spelling: no plus sign, no leading zero, no spaces.
        if n.to_string() != part {
            return Err(refused());
        }
        *field = n;
    }
    match parts.next() {
        None => Ok(fields),
        Some(_) => Err(refused()),
    }
}

/// The refusal of a token that is no cursor of this API, or names no position.
pub fn refused(parameter: &str) -> ApiError {
    ApiError::validation(
        parameter,
        "is not a cursor this API returned; pass the 'next' of the previous page unchanged",
    )
}

/// 32-bit FNV-1a: a check value that changes with any byte of `text`.
pub(super) fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}
