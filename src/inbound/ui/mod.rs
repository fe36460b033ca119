//! Driving adapter (inbound side of the hexagon): the approvers' pages under `/ui`, rendered on
//! the server with maud. A second adapter beside the HTTP API, on the same driving port
//! [`WorkflowUseCases`](crate::domain::ports::WorkflowUseCases): it parses forms into domain
//! requests and renders the results (and every refusal) as HTML. No JavaScript is needed.
//!
//! `filters` matches paths and methods; `browser` holds what a browser carries between requests
//! (who it acts as, its CSRF token, a one-time message); `csrf` makes and checks the tokens;
//! `form` reads form bodies; `page` lays out every page and answers redirects; `names` shows
//! users by name; `wording` says statuses, times and refusals in words; each module of `pages`
//! is one page (or one form's target) with its view.
//!
//! Authentication is out of scope: whoever opens the pages chooses who they act as.

mod browser;
mod csrf;
mod filters;
mod form;
mod names;
mod page;
mod pages;
mod wording;

pub use filters::routes;

/// Largest form body accepted (a 2,000-character comment, percent-encoded, fits).
pub const MAX_FORM_BYTES: u64 = 32 * 1024;

/// How many inbox rows one page shows.
pub const INBOX_PAGE_SIZE: u32 = 50;

#[cfg(test)]
mod tests;
