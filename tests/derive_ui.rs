//! Compile-time behaviour of `#[derive(Tenant)]`, `#[derive(Domain)]` and
//! `#[pgschemas_diesel::test]`, through the library's re-exports: what compiles, and the
//! error each mistake gets.
//!
//! The cases are `pgschemas-diesel/tests/ui/{pass,fail}_*.rs`; the expected diagnostics are
//! the `.stderr` files next to them, blessed with `TRYBUILD=overwrite` on the pinned
//! toolchain (rustc 1.95).

#[test]
fn derive_ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
