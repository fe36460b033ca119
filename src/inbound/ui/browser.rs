//! Driving adapter, pages: what a browser carries between requests, in cookies scoped to `/ui`:
//! who it acts as, its CSRF token, and a one-time message for the page a form redirects to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use warp::{Filter, Rejection};

use super::csrf::CsrfToken;
use super::form::canonical_id;
use crate::domain::model::UserId;

const USER_COOKIE: &str = "approvals_user";
const CSRF_COOKIE: &str = "approvals_csrf";
const FLASH_COOKIE: &str = "approvals_flash";

/// Longest one-time message kept (a cookie must stay small).
const MAX_FLASH_CHARS: usize = 600;

/// Whether a one-time message reports something done or something refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Done,
    Refused,
}

/// A one-time message, shown once on the page a form redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub tone: Tone,
    pub text: String,
}

impl Flash {
    pub fn done(text: impl Into<String>) -> Self {
        Self {
            tone: Tone::Done,
            text: text.into(),
        }
    }

    pub fn refused(text: impl Into<String>) -> Self {
        Self {
            tone: Tone::Refused,
            text: text.into(),
        }
    }

    /// The `Set-Cookie` value that carries it to the next page.
    pub fn cookie(&self) -> String {
        let tag = match self.tone {
            Tone::Done => 'd',
            Tone::Refused => 'r',
        };
        let text: String = self.text.chars().take(MAX_FLASH_CHARS).collect();
        let value = URL_SAFE_NO_PAD.encode(format!("{tag}{text}"));
        format!("{FLASH_COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Lax; Max-Age=60")
    }

    fn parse(raw: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let mut chars = text.chars();
        let tone = match chars.next()? {
            'd' => Tone::Done,
            'r' => Tone::Refused,
            _ => return None,
        };
        Some(Self {
            tone,
            text: chars.take(MAX_FLASH_CHARS).collect(),
        })
    }
}

/// What one request's browser brought, and the token its pages' forms must carry.
#[derive(Debug, Clone)]
pub struct Browser {
    /// Who it acts as (not yet checked against the directory).
    pub user: Option<UserId>,
    /// Its CSRF token: the cookie's, or a new one when it had none (see `token_is_new`).
    pub token: CsrfToken,
    /// Whether `token` was made for this request and must be set as the cookie.
    pub token_is_new: bool,
    /// A one-time message to show, left by the form that redirected here.
    pub flash: Option<Flash>,
}

impl Browser {
    /// The `Set-Cookie` values its answer must carry: a new token, and the flash cleared.
    pub fn cookies(&self) -> Vec<String> {
        let mut cookies = Vec::new();
        if self.token_is_new {
            cookies.push(format!(
                "{CSRF_COOKIE}={}; Path=/ui; HttpOnly; SameSite=Lax",
                self.token.as_str()
            ));
        }
        if self.flash.is_some() {
            cookies.push(format!("{FLASH_COOKIE}=; Path=/ui; Max-Age=0"));
        }
        cookies
    }
}

/// The `Set-Cookie` value that makes the browser act as `user`.
pub fn acting_cookie(user: UserId) -> String {
    format!("{USER_COOKIE}={user}; Path=/ui; HttpOnly; SameSite=Lax; Max-Age=2592000")
}

/// The randomness for a token was not to be had (the operating system refused): a 500.
#[derive(Debug)]
pub struct NoRandomness;

impl warp::reject::Reject for NoRandomness {}

/// The browser of a request, from its cookies. A cookie that does not parse is ignored.
pub fn browser() -> impl Filter<Extract = (Browser,), Error = Rejection> + Clone {
    warp::cookie::optional::<String>(USER_COOKIE)
        .and(warp::cookie::optional::<String>(CSRF_COOKIE))
        .and(warp::cookie::optional::<String>(FLASH_COOKIE))
        .and_then(
            |user: Option<String>, token: Option<String>, flash: Option<String>| async move {
                let user = user.and_then(|raw| parse_user(&raw));
                let flash = flash.and_then(|raw| Flash::parse(&raw));
                let (token, token_is_new) = match token.as_deref().and_then(CsrfToken::parse) {
                    Some(token) => (token, false),
                    None => match CsrfToken::generate() {
                        Ok(token) => (token, true),
                        Err(e) => {
                            tracing::error!(error = %e, "no randomness for a CSRF token");
                            return Err(warp::reject::custom(NoRandomness));
                        }
                    },
                };
                Ok::<_, Rejection>(Browser {
                    user,
                    token,
                    token_is_new,
                    flash,
                })
            },
        )
}

/// A user id as the cookie holds it: a canonical positive decimal.
fn parse_user(raw: &str) -> Option<UserId> {
    canonical_id(raw).and_then(|id| UserId::new(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashes_round_trip_through_their_cookie() {
        for flash in [
            Flash::done("You approved “Sales manager review”."),
            Flash::refused("A comment is required to reject."),
        ] {
            let cookie = flash.cookie();
            let value = cookie
                .strip_prefix("approvals_flash=")
                .and_then(|rest| rest.split(';').next())
                .unwrap();
            assert_eq!(Flash::parse(value), Some(flash));
        }
        assert_eq!(Flash::parse("x"), None);
        assert_eq!(Flash::parse(&URL_SAFE_NO_PAD.encode("zhello")), None);
    }

    #[test]
    fn long_flashes_are_cut() {
        let cookie = Flash::refused("x".repeat(5000)).cookie();
        assert!(cookie.len() < 1000, "{}", cookie.len());
    }

    #[test]
    fn user_cookies_are_canonical_ids() {
        assert_eq!(parse_user("12"), UserId::new(12).ok());
        for raw in ["", "0", "012", "-1", "1x", "99999999999999999999"] {
            assert_eq!(parse_user(raw), None, "{raw:?}");
        }
    }
}
