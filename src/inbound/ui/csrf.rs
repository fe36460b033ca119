//! Driving adapter, pages: CSRF tokens. Each browser gets a random token in a cookie, and every
//! form carries it in a hidden field; a POST whose field does not match its cookie is refused.
//! A page on another site can make a browser post to us with our cookies, but it can read
//! neither the cookie nor our pages, so it can't know the token (the "double submit" pattern).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes in a token: 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;

/// A browser's CSRF token: [`TOKEN_BYTES`] from the operating system's CSPRNG, base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// A new random token; `Err` only if the operating system can't supply randomness.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token as a cookie holds it: `None` unless it is exactly what [`generate`](Self::generate)
    /// makes (so a cookie planted with a short or empty value is replaced, not trusted).
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == TOKEN_BYTES).then(|| Self(raw.to_owned()))
    }

    /// The token as text (cookie value and hidden field).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a form's field carries this token. Compares every byte whatever the first
    /// difference, so that the time taken says nothing about how much of a guess was right.
    pub fn matches(&self, submitted: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), submitted.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_parse_back() {
        let a = CsrfToken::generate().unwrap();
        let b = CsrfToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(CsrfToken::parse(a.as_str()), Some(a.clone()));
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(""));
        assert!(!a.matches(&a.as_str()[..42]));
    }

    #[test]
    fn planted_values_are_not_tokens() {
        for raw in ["", "x", "AAAA", "not base64 at all!", &"A".repeat(44)] {
            assert_eq!(CsrfToken::parse(raw), None, "{raw:?}");
        }
    }
}
