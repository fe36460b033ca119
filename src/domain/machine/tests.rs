//! Unit tests of the state machine.
