//! Test database names: derived from a test's path, valid, short and distinct.

/// Every test database name starts with this, so a test never drops a database it did not
/// create.
const PREFIX: &str = "test_";

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`), in bytes.
const MAX_NAME_LEN: usize = 63;

/// Hex digits of the path hash appended to names that are not kept verbatim.
const HASH_LEN: usize = 8;

/// Derives a database name from a hint such as a test's path.
///
/// A hint made only of `[a-z0-9_]` that fits after the prefix is kept verbatim. Any other
/// hint is lowercased, every run of other characters becomes one `_`, and the tail that fits
/// is kept, followed by a hash of the whole hint: sanitising and truncating lose
/// information, the hash keeps names of distinct hints distinct.
#[cfg(test)]
pub(crate) fn database_name(hint: &str) -> String {
    database_name_in(hint, "")
}

/// [`database_name`], the hash also covering `salt` (the test executable's path): the same
/// test path in two executables (a package's library and binary, which share a crate name;
/// two checkouts of one suite) gives two names. A verbatim name ignores it.
pub(crate) fn database_name_in(hint: &str, salt: &str) -> String {
    let verbatim = !hint.is_empty()
        && hint
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if verbatim && PREFIX.len() + hint.len() <= MAX_NAME_LEN {
        return format!("{PREFIX}{hint}");
    }
    // closures (and async test bodies) add `{{closure}}` segments: noise in a name
    let mut readable = String::with_capacity(hint.len());
    for c in hint.replace("{{closure}}", "").chars() {
        if c.is_ascii_alphanumeric() {
            readable.push(c.to_ascii_lowercase());
        } else if !readable.ends_with('_') {
            readable.push('_');
        }
    }
    let readable = readable.trim_matches('_');
    let room = MAX_NAME_LEN - PREFIX.len() - 1 - HASH_LEN;
    let tail = if readable.len() <= room {
        readable
    } else {
        // keep whole words: start after the first `_` unless the cut already falls on one
        let start = readable.len() - room;
        let cut = &readable[start..];
        match cut.find('_') {
            Some(i) if readable.as_bytes()[start - 1] != b'_' => &cut[i + 1..],
            _ => cut,
        }
    };
    let tail = tail.trim_matches('_');
    let hash = fnv1a_64(format!("{hint}\0{salt}").as_bytes());
    let short_hash = (hash ^ (hash >> 32)) as u32;
    if tail.is_empty() {
        format!("{PREFIX}{short_hash:08x}")
    } else {
        format!("{PREFIX}{tail}_{short_hash:08x}")
    }
}

/// FNV-1a: a tiny hash that is stable across Rust versions and platforms.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_valid(name: &str) -> bool {
        name.len() <= MAX_NAME_LEN
            && name.starts_with(PREFIX)
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    #[test]
    fn the_executable_salts_the_hash_of_a_path_only() {
        let lib = database_name_in("atkb::tests::same_name", "/t/deps/atkb-1111");
        let bin = database_name_in("atkb::tests::same_name", "/t/deps/atkb-2222");
        assert_ne!(lib, bin);
        assert!(lib.starts_with("test_atkb_tests_same_name_"), "{lib}");
        assert_eq!(database_name_in("quickstart", "/t/x"), "test_quickstart");
    }

    #[test]
    fn short_clean_hints_are_kept_verbatim() {
        assert_eq!(database_name("quickstart"), "test_quickstart");
        assert_eq!(database_name("a_1"), "test_a_1");
        let longest = "x".repeat(MAX_NAME_LEN - PREFIX.len());
        assert_eq!(database_name(&longest), format!("{PREFIX}{longest}"));
    }

    #[test]
    fn names_are_sanitised() {
        let cases = [
            "integration::testing_support::kept_on_panic",
            "MyCrate::Tests::CamelCase",
            "crate::a::{{closure}}::b",
            "with spaces and-dashes/and.dots",
            "ünïcödé::名前",
            "",
            "::",
            "\"; DROP DATABASE postgres; --",
        ];
        for hint in cases {
            let name = database_name(hint);
            assert!(is_valid(&name), "{hint:?} gave {name:?}");
        }
        let name = database_name("MyCrate::Tests::CamelCase");
        assert!(name.starts_with("test_mycrate_tests_camelcase_"), "{name}");
        let name = database_name("crate::a::{{closure}}::b");
        assert!(name.starts_with("test_crate_a_b_"), "{name}");
    }

    #[test]
    fn names_are_capped_at_63_bytes_and_keep_the_tail() {
        let hint = format!(
            "integration::{}::the_interesting_test_name",
            "deeply_nested_module::".repeat(10)
        );
        let name = database_name(&hint);
        assert!(is_valid(&name), "{name}");
        assert!(name.len() > MAX_NAME_LEN - 10, "{name} wastes room");
        let without_hash = &name[..name.len() - HASH_LEN - 1];
        assert!(
            without_hash.ends_with("_the_interesting_test_name"),
            "{name}"
        );
    }

    #[test]
    fn truncation_keeps_whole_words() {
        let hint = "integration::testing_support::database_is_kept_when_the_test_panics";
        let name = database_name(hint);
        assert!(is_valid(&name), "{name}");
        let readable = &name[PREFIX.len()..name.len() - HASH_LEN - 1];
        assert!(
            "integration_testing_support_database_is_kept_when_the_test_panics"
                .ends_with(&format!("_{readable}")),
            "{name} should start at a word"
        );
        let one_long_word = "x".repeat(100);
        assert!(is_valid(&database_name(&one_long_word)));
    }

    #[test]
    fn names_are_deterministic() {
        let hint = "integration::routing::static_host_wins";
        assert_eq!(database_name(hint), database_name(hint));
    }

    #[test]
    fn long_names_sharing_a_tail_stay_distinct() {
        let shared_tail = "x".repeat(80);
        let hints: Vec<String> = (0..1000)
            .map(|i| format!("integration::module_{i}::{shared_tail}"))
            .collect();
        let names: HashSet<String> = hints.iter().map(|hint| database_name(hint)).collect();
        assert_eq!(names.len(), hints.len());
        assert!(names.iter().all(|name| is_valid(name)));
    }

    #[test]
    fn hints_that_sanitise_alike_stay_distinct() {
        let pairs = [
            ("a::b_c", "a_b::c"),
            ("tests::Foo", "tests::foo"),
            ("m::t", "m__t"),
        ];
        for (left, right) in pairs {
            assert_ne!(
                database_name(left),
                database_name(right),
                "{left} / {right}"
            );
        }
    }
}
