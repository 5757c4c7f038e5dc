//! Table-driven tests of the domain and folder rules, no database.

use super::*;

fn norm(raw: &str) -> Option<(String, Option<String>)> {
    let mut storage = None;
    let fast = is_normal(raw.as_bytes());
    let got = normalize_host(raw.as_bytes(), &mut storage)
        .ok()
        .map(|(host, port)| (host.to_owned(), port.map(str::to_owned)));
    // The fast path agrees with the full one.
    let mut key = HostBuf::new();
    let slow = normalize_into(raw.as_bytes(), &mut key)
        .ok()
        .map(|port| (key.as_str().to_owned(), port.map(str::to_owned)));
    assert_eq!(got, slow, "{raw:?}");
    if fast {
        assert_eq!(got.as_ref().map(|g| g.0.as_str()), Some(raw));
    }
    got
}

#[test]
fn host_normalisation() {
    type Case<'a> = (&'a str, Option<(&'a str, Option<&'a str>)>);
    let cases: &[Case<'_>] = &[
        ("localhost", Some(("localhost", None))),
        ("LocalHost", Some(("localhost", None))),
        ("localhost:8000", Some(("localhost", Some("8000")))),
        ("localhost:", Some(("localhost", None))),
        ("localhost.", Some(("localhost", None))),
        ("localhost.:80", Some(("localhost", Some("80")))),
        ("www.test.com", Some(("test.com", None))),
        ("WWW.Test.COM:443", Some(("test.com", Some("443")))),
        ("www.www.test.com", Some(("www.test.com", None))),
        ("1www.test.com", Some(("1www.test.com", None))),
        ("www", Some(("www", None))),
        ("www.", Some(("www", None))),
        (
            "xn--bcher-kva.example",
            Some(("xn--bcher-kva.example", None)),
        ),
        (
            "XN--Bcher-KVA.example:8000",
            Some(("xn--bcher-kva.example", Some("8000"))),
        ),
        ("[::1]:3000", Some(("[::1]", Some("3000")))),
        ("[::1]", Some(("[::1]", None))),
        ("[FE80::1]", Some(("[fe80::1]", None))),
        ("127.0.0.1:3000", Some(("127.0.0.1", Some("3000")))),
        ("", None),
        (".", None),
        ("..", None),
        ("a..b", None),
        (".a", None),
        ("a b", None),
        (" localhost", None),
        ("localhost:80:80", None),
        ("localhost:http", None),
        ("localhost:123456", None),
        ("localhost:65536", None),
        ("localhost:65535", Some(("localhost", Some("65535")))),
        ("localhost:-1", None),
        ("localhost:+1", None),
        ("user@localhost", None),
        ("localhost/path", None),
        ("héllo.com", None),
        ("bücher.example", None),
        // Django's host validation refuses `_`, and so does every stored domain.
        ("ws_tenant3.localhost", None),
        ("WS_Tenant3.localhost", None),
        ("[::1", None),
        ("[", None),
        ("[]", None),
        ("[::1]x", None),
        ("[fe80::1%eth0]", None),
        ("www..", None),
    ];
    for (raw, want) in cases {
        let want = want.map(|(h, p)| (h.to_owned(), p.map(str::to_owned)));
        assert_eq!(norm(raw), want, "{raw:?}");
    }
    assert!(norm(&"a".repeat(253)).is_some());
    assert!(norm(&format!("{}.", "a".repeat(253))).is_some());
    assert!(norm(&"a".repeat(254)).is_none());
}

#[test]
fn stored_domains() {
    let ok: &[(&str, &str)] = &[
        ("localhost", "localhost"),
        ("  Tenants.LOCALHOST ", "tenants.localhost"),
        ("LocalHost.", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("www", "www"),
        ("1www.test.com", "1www.test.com"),
        ("a-b.c-d", "a-b.c-d"),
    ];
    for (raw, want) in ok {
        assert_eq!(stored_domain(raw).as_deref(), Ok(*want), "{raw:?}");
    }
    let long = "a".repeat(254);
    let refused: &[(&str, DomainFault)] = &[
        ("", DomainFault::Empty),
        ("  ", DomainFault::Empty),
        (".", DomainFault::Empty),
        (&long, DomainFault::TooLong),
        ("bücher.example", DomainFault::NotAscii('ü')),
        ("Bücher.example", DomainFault::NotAscii('ü')),
        ("ws_tenant3.localhost", DomainFault::Underscore),
        ("https://a.com", DomainFault::BadCharacter(':')),
        ("a.com:8000", DomainFault::BadCharacter(':')),
        ("a.com/x", DomainFault::BadCharacter('/')),
        ("a b.com", DomainFault::BadCharacter(' ')),
        ("[::1]", DomainFault::BadCharacter('[')),
        ("a..b", DomainFault::EmptyLabel),
        (".a", DomainFault::EmptyLabel),
        ("a.com..", DomainFault::EmptyLabel),
        ("www.a.com", DomainFault::Www),
        ("WWW.a.com", DomainFault::Www),
    ];
    for (raw, fault) in refused {
        assert_eq!(stored_domain(raw), Err(*fault), "{raw:?}");
    }
}

#[test]
fn fault_messages_say_what_to_do() {
    for (fault, needle) in [
        (DomainFault::NotAscii('ü'), "xn--"),
        (DomainFault::Underscore, "'_'"),
        (
            DomainFault::BadCharacter(':'),
            "without scheme, port or path",
        ),
        (DomainFault::Www, "www."),
    ] {
        let m = fault.to_string();
        assert!(m.contains(needle), "{m}");
        assert!(m.starts_with(|c: char| c.is_lowercase()), "lower case: {m}");
        assert!(!m.ends_with('.'), "no trailing period: {m}");
    }
    let m = FolderFault::BadCharacter('/').to_string();
    assert!(m.contains("'/'") && m.contains(FOLDER_RULE), "{m}");
}

#[test]
fn folders() {
    for ok in ["tenant1", "a", "t-1_x.y~z", "T1", "..a", &"a".repeat(253)] {
        assert!(is_valid_folder(ok), "{ok}");
        assert_eq!(stored_folder(Some(ok)), Ok(Some(ok.to_owned())), "{ok}");
    }
    assert_eq!(stored_folder(None), Ok(None));
    assert_eq!(stored_folder(Some("")), Ok(None));
    assert!(!is_valid_folder(""));
    let long = "a".repeat(254);
    for (bad, fault) in [
        (".", FolderFault::Dots),
        ("..", FolderFault::Dots),
        ("a/b", FolderFault::BadCharacter('/')),
        ("a b", FolderFault::BadCharacter(' ')),
        ("a?b", FolderFault::BadCharacter('?')),
        ("a%20b", FolderFault::BadCharacter('%')),
        ("é", FolderFault::BadCharacter('é')),
        ("acmé", FolderFault::BadCharacter('é')),
        (long.as_str(), FolderFault::TooLong),
    ] {
        assert!(!is_valid_folder(bad), "{bad}");
        assert_eq!(stored_folder(Some(bad)), Err(fault), "{bad}");
    }
}

#[test]
fn route_hosts() {
    for (raw, want) in [
        ("Tenant1.LocalHost.", Ok("tenant1.localhost")),
        ("www.tenant2.localhost", Ok("tenant2.localhost")),
        ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
        (
            "port.localhost:8000",
            Err("a stored domain must not have a port"),
        ),
        ("bad host.localhost", Err("not a valid host name")),
        ("ws_tenant3.localhost", Err("not a valid host name")),
    ] {
        assert_eq!(route_host(raw).as_deref().map_err(|e| *e), want, "{raw:?}");
    }
    let unicode = route_host("bücher.example").unwrap_err();
    assert!(unicode.starts_with("not a valid host name") && unicode.contains("xn--"));
}

#[test]
fn labels() {
    assert_eq!(route_label("a.com", None), "a.com");
    assert_eq!(route_label("a.com", Some("")), "a.com");
    assert_eq!(route_label("a.com", Some("acme")), "a.com/acme");
}

proptest::proptest! {
    #[test]
    fn fast_path_agrees(raw in "[a-zA-Z0-9._:\\[\\]-]{0,20}") {
        norm(&raw);
    }

    /// Whatever the configuration or the domain model stores, routing finds as it is.
    #[test]
    fn a_stored_domain_is_routed_as_stored(raw in "[a-zA-Z0-9._ é:-]{0,24}") {
        if let Ok(stored) = stored_domain(&raw) {
            proptest::prop_assert_eq!(norm(&stored), Some((stored.clone(), None)));
            proptest::prop_assert_eq!(route_host(&stored), Ok(stored.clone()));
        }
    }
}
