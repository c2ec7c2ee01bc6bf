//! Several backends behind the real `host-proxy` process: least-connections balancing,
//! failover when a backend dies, no connection to a backend known dead, rejoin when healthy.

mod common;

use std::collections::BTreeMap;

use common::{Behaviour, ProxyProcess, TestBackend, named_round_trip};

async fn named(name: &str) -> TestBackend {
    TestBackend::start(Behaviour::NamedEcho(name.to_owned())).await
}

/// Opens `count` short connections one after another; returns how many each backend served.
async fn spread(proxy: &ProxyProcess, count: usize, tag: &str) -> BTreeMap<String, usize> {
    let mut served = BTreeMap::new();
    for index in 0..count {
        let payload = format!("{tag}-{index}");
        let (name, stream) = named_round_trip(proxy.address, payload.as_bytes()).await;
        drop(stream);
        *served.entry(name).or_insert(0) += 1;
    }
    served
}

fn up_sample(backend: &TestBackend) -> String {
    format!(
        "host_proxy_backend_up{{backend=\"{}\"}}",
        backend.backend_arg()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_balanced_by_least_connections() {
    let a = named("a").await;
    let b = named("b").await;
    let proxy =
        ProxyProcess::start(&["--backend", &a.backend_arg(), "--backend", &b.backend_arg()]);
    let mut held = Vec::new();
    for index in 0..6 {
        held.push(named_round_trip(proxy.address, format!("hold-{index}").as_bytes()).await);
    }
    let count = |held: &[(String, tokio::net::TcpStream)], name: &str| {
        held.iter()
            .filter(|(served_by, _)| served_by == name)
            .count()
    };
    assert_eq!((count(&held, "a"), count(&held, "b")), (3, 3));
    // Close every connection on a: the next three all go there, since b stays busier.
    held.retain(|(name, _)| name != "a");
    proxy
        .wait_for_metric(
            &format!(
                "host_proxy_backend_connections_active{{backend=\"{}\"}}",
                a.backend_arg()
            ),
            0,
        )
        .await;
    for index in 0..3 {
        let (name, stream) =
            named_round_trip(proxy.address, format!("refill-{index}").as_bytes()).await;
        assert_eq!(name, "a", "connection {index} after freeing a");
        held.push((name, stream));
    }
    assert_eq!((count(&held, "a"), count(&held, "b")), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_is_skipped_and_rejoins_when_it_is_back() {
    let mut a = named("a").await;
    let b = named("b").await;
    let c = named("c").await;
    let proxy = ProxyProcess::start(&[
        "--backend",
        &a.backend_arg(),
        "--backend",
        &b.backend_arg(),
        "--backend",
        &c.backend_arg(),
        "--health-interval",
        "100ms",
        "--health-timeout",
        "500ms",
    ]);
    let before = spread(&proxy, 30, "before").await;
    assert_eq!(before.len(), 3, "all three serve: {before:?}");

    // Kill a: every following connection succeeds on b or c, whether or not a health check
    // has noticed yet (a failed connect fails over to the next backend).
    let a_address = a.address;
    a.kill().await;
    let during = spread(&proxy, 30, "during").await;
    assert!(!during.contains_key("a"), "{during:?}");
    assert_eq!(during.values().sum::<usize>(), 30);
    proxy.wait_for_metric(&up_sample(&a), 0).await;
    assert_eq!(
        proxy.metric("host_proxy_connections_refused_total{reason=\"no_backend\"}"),
        0
    );

    // Bring a back on the same port: the health checks return it to the pool.
    let a = TestBackend::restart_on(a_address, Behaviour::NamedEcho("a".to_owned())).await;
    proxy.wait_for_metric(&up_sample(&a), 1).await;
    let after = spread(&proxy, 30, "after").await;
    assert!(
        after.get("a").copied().unwrap_or(0) > 0,
        "a rejoined: {after:?}"
    );
    assert_eq!(after.values().sum::<usize>(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connect_fails_over_and_ejects_until_a_check_passes() {
    let mut a = named("a").await;
    let b = named("b").await;
    // Checks only at start: what follows is the passive path alone.
    let proxy = ProxyProcess::start(&[
        "--backend",
        &a.backend_arg(),
        "--backend",
        &b.backend_arg(),
        "--health-interval",
        "1h",
    ]);
    proxy
        .wait_for_metric(
            &format!(
                "host_proxy_backend_health_checks_passed_total{{backend=\"{}\"}}",
                a.backend_arg()
            ),
            1,
        )
        .await;
    let a_address = a.address;
    a.kill().await;
    assert_eq!(
        proxy.metric(&up_sample(&a)),
        1,
        "no check has run since the kill"
    );
    let served = spread(&proxy, 10, "failover").await;
    assert_eq!(served.get("b"), Some(&10), "{served:?}");
    assert_eq!(
        proxy.metric(&format!(
            "host_proxy_backend_connect_failures_total{{backend=\"{}\"}}",
            a.backend_arg()
        )),
        1,
        "one failed connect ejects a; it is not tried again"
    );
    assert_eq!(proxy.metric(&up_sample(&a)), 0);
    // a is back and would accept, but no check has passed: it stays out of the pool.
    let a = TestBackend::restart_on(a_address, Behaviour::NamedEcho("a".to_owned())).await;
    let served = spread(&proxy, 10, "still-out").await;
    assert_eq!(served.get("b"), Some(&10), "{served:?}");
    assert_eq!(a.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
