//! Tests of the service (domain core, the implementation of the driving port
//! `WorkflowUseCases`): how each use case drives the ports, with mockall doubles of the
//! repository, the role resolver and the clock. One module per group of use cases; the shared
//! fixtures are in [`fixtures`]. The domain's error type is tested here too, as the service is
//! what hands it to the adapters.

mod cancel;
mod conditions;
mod decide;
mod delegation;
mod directory;
mod errors;
mod fixtures;
mod reads;
mod search;
mod template_versions;
mod templates;
mod trigger;
mod users;
