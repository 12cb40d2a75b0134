//! `Follow` with the sources that need no DNS server: fixed names, a
//! published set, a watched file. (DNS is tested against a real dnsmasq in
//! tests/integration/discovery.)

use std::time::Duration;

use super::*;
use crate::kernel::endpoint::Endpoint;
use crate::kernel::transport::Addr;

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn tcp(h: &str, p: u16) -> Addr {
    Addr::Tcp(h.into(), p)
}

fn addrs(eps: &[Endpoint]) -> Vec<String> {
    eps.iter().map(|e| e.addr.to_string()).collect()
}

#[test]
fn which_names_are_followed() {
    assert!(followed(&tcp("db.internal", 5432)));
    assert!(!followed(&tcp("10.0.0.1", 5432)));
    assert!(!followed(&tcp("::1", 5432)));
    assert!(!followed(&tcp("LocalHost", 5432)));
    assert!(!followed(&Addr::Unix("/tmp/s".into())));
}

#[test]
fn endpoints_parse() {
    assert_eq!(
        parse_endpoint(" 10.0.0.1:80 ").unwrap(),
        tcp("10.0.0.1", 80)
    );
    assert_eq!(parse_endpoint("[::1]:80").unwrap(), tcp("::1", 80));
    assert_eq!(
        parse_endpoint("unix:/tmp/x").unwrap(),
        Addr::Unix("/tmp/x".into())
    );
    for bad in ["h", "h:0", "h:x", ":80", "::1:80", "unix:"] {
        assert!(parse_endpoint(bad).is_err(), "{bad}");
    }
}

#[test]
fn fixed_names_need_no_wait() {
    run(async {
        let mut f = Follow::start(&[tcp("10.0.0.1", 1), tcp("localhost", 2)], &[]);
        assert!(!f.watching());
        let first = tokio::time::timeout(Duration::from_secs(5), f.first(Duration::from_secs(30)))
            .await
            .expect("no wait for fixed names");
        assert_eq!(addrs(&first), ["10.0.0.1:1", "localhost:2"]);
    });
}

#[test]
fn published_sets_are_followed_and_merged() {
    run(async {
        let name = "unit-published-merge";
        let mut f = Follow::start(&[tcp("10.0.0.9", 9)], &[Source::Published(name.into())]);
        // Nothing published yet: the service does not wait for it.
        let first = f.first(Duration::from_secs(30)).await;
        assert_eq!(addrs(&first), ["10.0.0.9:9"]);
        published::publish(name, vec![(tcp("10.0.0.1", 1), 1), (tcp("10.0.0.9", 9), 5)]);
        let next = tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .unwrap();
        assert_eq!(addrs(&next), ["10.0.0.9:9", "10.0.0.1:1"]);
        assert_eq!(next[1].origin, format!("discovery:{name}"));
        published::publish(name, vec![(tcp("10.0.0.2", 2), 2)]);
        let next = tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .unwrap();
        assert_eq!(addrs(&next), ["10.0.0.9:9", "10.0.0.2:2"]);
        assert_eq!(next[1].weight, 2);
    });
}

#[test]
fn a_watched_file_is_reloaded_and_a_bad_one_keeps_the_last_set() {
    let dir = std::env::temp_dir().join(format!("iok-disc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("endpoints.txt");
    std::fs::write(&path, "10.0.0.1:1\n10.0.0.2:2 3\n").unwrap();
    run(async {
        let mut f = Follow::start(&[], &[Source::File(path.clone())]);
        let first = f.first(Duration::from_secs(30)).await;
        assert_eq!(addrs(&first), ["10.0.0.1:1", "10.0.0.2:2"]);
        assert_eq!(first[1].weight, 3);
        // Replaced by rename, as deploy tools do.
        let tmp = dir.join("endpoints.tmp");
        std::fs::write(&tmp, r#"[{"address": "10.0.0.3:3", "weight": 2}]"#).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .unwrap();
        assert_eq!(addrs(&next), ["10.0.0.3:3"]);
        // A broken file keeps the set; the next good one is taken.
        std::fs::write(&path, "not an endpoint\n").unwrap();
        std::fs::write(&path, "10.0.0.4:4\n").unwrap();
        let next = tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .unwrap();
        assert_eq!(addrs(&next), ["10.0.0.4:4"]);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A watch that reports a TLS problem at once and settles when told.
struct Scripted(std::sync::Arc<tokio::sync::Notify>);

impl Watch for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }

    fn follow(&self, out: Update) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        let go = self.0.clone();
        Box::pin(async move {
            out.tls_problem("s1:1: TLS: unknown CA".into(), "unknown_ca");
            go.notified().await;
            out.settled();
            std::future::pending::<()>().await;
        })
    }
}

#[test]
fn a_watch_is_pending_until_it_settles() {
    run(async {
        let go = std::sync::Arc::new(tokio::sync::Notify::new());
        let w = Source::Watch(WatchSource(std::sync::Arc::new(Scripted(go.clone()))));
        let mut f = Follow::start(&[tcp("10.0.0.1", 1)], &[w]);
        let first = f.first(Duration::from_secs(30)).await;
        assert_eq!(addrs(&first), ["10.0.0.1:1"]);
        assert_eq!(f.pending(), "scripted");
        assert_eq!(f.problems(), "s1:1: TLS: unknown CA");
        assert_eq!(f.problems_tls(), Some("unknown_ca"));
        go.notify_one();
        tokio::time::timeout(Duration::from_secs(10), f.next())
            .await
            .unwrap();
        assert_eq!(f.pending(), "");
    });
}
