//! The store conformance suite (atmo-testkit), unchanged, against a file store and an
//! in-memory one.

mod file {
    atmo_testkit::store_conformance_tests!(crate::common::TempStore::new());
}

mod in_memory {
    atmo_testkit::store_conformance_tests!(atmo_sqlite::SqliteStore::open_in_memory().unwrap());
}
