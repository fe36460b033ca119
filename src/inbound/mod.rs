//! Inbound adapters: what drives the domain. Today only the HTTP API.

pub mod http;
