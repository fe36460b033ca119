//! Tests of the service's use of its ports, with mockall doubles.
