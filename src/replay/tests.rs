//! The `replay:` block's validation and defaults, entry lifetimes, reload adoption and tokens.

use super::*;
use crate::config;

fn routes(replay: &str) -> Result<Vec<Route>, String> {
    let text = format!(
        "routes:\n  - {{ name: a, path: /a, upstream: echo, verify: {{ scheme: standard-webhooks, secret: whsec_c2VjcmV0 }}, replay: {replay} }}\n  - {{ name: b, path: /b, upstream: echo, verify: {{ scheme: github, secret: s }}, replay: {replay} }}\n"
    );
    config::parse(&text, "t.yaml".as_ref(), &|name| (name == "PASSWORD").then(|| "hunter2".into()))
        .map(|config| config.routes)
        .map_err(|error| error.to_string())
}

fn replay(route: &Route) -> &Replay {
    route.replay.as_ref().expect("replay configured")
}

#[test]
fn defaults_follow_the_scheme() {
    let routes = routes("{}").expect("valid");
    assert_eq!(replay(&routes[0]).window, Duration::from_secs(300), "standard-webhooks' tolerance");
    assert_eq!(replay(&routes[1]).window, DEFAULT_WINDOW, "github has no timestamp");
    assert_eq!(replay(&routes[0]).on_store_error, OnStoreError::Reject);
    assert_eq!(
        replay(&routes[0]).spec,
        StoreSpec::Memory { capacity: NonZeroUsize::new(DEFAULT_CAPACITY).expect("non-zero") }
    );
}

#[test]
fn redis_settings_are_validated_and_the_password_never_printed() {
    let routes = routes(
        "{ store: \"redis://:${PASSWORD}@127.0.0.1:6390/2\", on_store_error: allow, timeout: 100ms, window: 1h }",
    )
    .expect("valid");
    let replay = replay(&routes[0]);
    assert_eq!(replay.on_store_error, OnStoreError::Allow);
    assert_eq!(replay.window, Duration::from_secs(3600));
    let printed = format!("{:?}", routes[0]);
    assert!(printed.contains("redis://***@127.0.0.1:6390/2"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
}

#[test]
fn problems_name_the_field() {
    let cases = [
        ("{ store: disk }", "replay.store"),
        ("{ store: \"redis://\" }", "replay.store"),
        ("{ store: \"rediss://h\" }", "replay.store"),
        ("{ capacity: 0 }", "replay.capacity"),
        ("{ timeout: 1s }", "replay.timeout"),
        ("{ on_store_error: allow }", "replay.on_store_error"),
        ("{ store: \"redis://h\", capacity: 5 }", "replay.capacity"),
        ("{ store: \"redis://h\", timeout: 0s }", "replay.timeout"),
        ("{ window: 0s }", "replay.window"),
        ("{ window: 31d }", "replay.window"),
        ("{ on_store_error: maybe }", "on_store_error"),
        ("{ windw: 1s }", "windw"),
    ];
    for (replay, field) in cases {
        let error = routes(replay).expect_err(replay);
        assert!(error.contains(field), "{replay}: {error}");
        assert!(!error.contains("hunter2"));
    }
}

#[test]
fn an_entry_lives_until_its_timestamp_is_stale() {
    let routes = routes("{ window: 1s }").expect("valid");
    let replay = replay(&routes[0]);
    let now = UnixTime::from_secs(1_000);
    assert_eq!(replay.ttl(None, now), Duration::from_secs(1));
    assert_eq!(replay.ttl(Some(now), now), Duration::from_secs(300), "fresh for the whole tolerance");
    assert_eq!(replay.ttl(Some(UnixTime::from_secs(800)), now), Duration::from_secs(100));
    assert_eq!(replay.ttl(Some(UnixTime::from_secs(0)), now), Duration::from_secs(1));
    assert_eq!(replay.ttl(Some(UnixTime::from_secs(i64::MAX / 2_000_000_000)), now), MAX_TTL);
}

#[test]
fn a_reload_keeps_the_store_unless_its_spec_changed() {
    let current = routes("{ window: 1s }").expect("valid");
    let mut same = routes("{ window: 2s }").expect("valid");
    let mut resized = routes("{ capacity: 10 }").expect("valid");
    adopt(&current, &mut same);
    adopt(&current, &mut resized);
    assert!(Arc::ptr_eq(&replay(&same[0]).store, &replay(&current[0]).store));
    assert!(!Arc::ptr_eq(&replay(&resized[0]).store, &replay(&current[0]).store));
}

#[test]
fn tokens_differ() {
    let tokens: std::collections::HashSet<Token> = (0..1000).map(|_| token()).collect();
    assert_eq!(tokens.len(), 1000);
}
