//! The store conformance suite (atmo-testkit), unchanged, each case in a fresh schema.

atmo_testkit::store_conformance_tests!(crate::fresh_or_skip!());
