//! Unit tests of the state machine (domain core): pure functions, so no doubles, only fixed
//! inputs and the fixed `now` of [`fixtures`]. One module per use of the machine.

mod actors;
mod cancel;
mod conditions;
mod decide;
mod delegation;
mod fixtures;
mod overdue;
mod quorum;
mod refusals;
mod self_approval;
mod templates;
mod trigger;
