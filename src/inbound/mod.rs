//! Inbound adapters: what drives the domain. The HTTP API (`http`) and the approvers' pages
//! (`ui`), both on the same driving port.

pub mod http;
pub mod ui;
