//! The store conformance suite (atmo-testkit) against the in-memory store.

atmo_testkit::store_conformance_tests!(atmo_workers::store::MemoryStore::new());
