//! The domain model: identifiers, names, statuses, templates, instances, steps and audit entries,
//! one idea per file and all re-exported here.
//!
//! Values that come from outside are parsed into these types once, at the edge; inside the core a
//! `StepId` is known to be positive and an `EventName` known to be well-formed.

mod audit;
mod blank;
mod cancel;
mod decision;
mod delegation;
mod directory;
mod due;
mod idempotency;
mod inbox;
mod instance;
mod load;
mod readiness;
mod search;
mod status;
mod template;
mod template_filter;
mod values;

pub use audit::*;
pub use blank::*;
pub use cancel::*;
pub use decision::*;
pub use delegation::*;
pub use directory::*;
pub use due::*;
pub use idempotency::*;
pub use inbox::*;
pub use instance::*;
pub use load::*;
pub use readiness::*;
pub use search::*;
pub use status::*;
pub use template::*;
pub use template_filter::*;
pub use values::*;
