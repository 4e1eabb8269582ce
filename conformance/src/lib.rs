//! Conformance harness (filled in below).
