//! Driving adapter, pages: form bodies (`application/x-www-form-urlencoded`, what a browser
//! sends), read whole up to [`MAX_FORM_BYTES`](super::MAX_FORM_BYTES) and parsed into fields.

use bytes::Bytes;
use warp::{Filter, Rejection};

use super::MAX_FORM_BYTES;
use super::csrf::CsrfToken;

/// The fields of a submitted form, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parses a body; `None` if it is not a well-formed form.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .map(Self)
    }

    /// The first value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether it carries `token` in its `csrf` field.
    pub fn carries(&self, token: &CsrfToken) -> bool {
        self.get("csrf").is_some_and(|sent| token.matches(sent))
    }
}

/// The raw body of a form post, at most [`MAX_FORM_BYTES`] (else warp's 413 rejection, which
/// the pages' `recover` shows as a page).
pub fn form_body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_FORM_BYTES).and(warp::body::bytes())
}

/// A positive id written the one canonical way ("12", not "012" or "+12"), else `None`.
pub fn canonical_id(raw: &str) -> Option<i64> {
    let canonical =
        !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0');
    canonical
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded_and_the_first_one_counts() {
        let form =
            Form::parse(b"comment=Fee+agreed%2C+thanks&verdict=approve&verdict=reject").unwrap();
        assert_eq!(form.get("comment"), Some("Fee agreed, thanks"));
        assert_eq!(form.get("verdict"), Some("approve"));
        assert_eq!(form.get("csrf"), None);
        assert_eq!(Form::parse(b""), Some(Form::default()));
    }

    #[test]
    fn the_token_must_match_its_cookie() {
        let token = CsrfToken::generate().unwrap();
        let body = format!("csrf={}", token.as_str());
        assert!(Form::parse(body.as_bytes()).unwrap().carries(&token));
        assert!(!Form::parse(b"csrf=guess").unwrap().carries(&token));
        assert!(!Form::parse(b"").unwrap().carries(&token));
    }
}
