//! The webhook HTTP client against a test resolver and real sockets on loopback: every class of
//! non-public address is refused (whatever name resolves to it), the connection goes to the
//! address that was checked, redirects are answers, and answers are read only so far.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use intake_core::WebhookUrl;
use intake_core::ports::WebhookClient;
use intake_webhooks::http::{HyperWebhookClient, Resolve, retry_after};
use time::macros::datetime;

/// DNS answers from a table; counts lookups.
#[derive(Clone, Default)]
struct Table {
    answers: Arc<Mutex<HashMap<String, Vec<std::net::IpAddr>>>>,
    lookups: Arc<AtomicUsize>,
}

impl Table {
    fn with(pairs: &[(&str, &[&str])]) -> Self {
        let t = Self::default();
        for (host, ips) in pairs {
            t.answers
                .lock()
                .unwrap()
                .insert(host.to_string(), ips.iter().map(|i| i.parse().unwrap()).collect());
        }
        t
    }
}

impl Resolve for Table {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answers = self.answers.lock().unwrap();
        let ips = answers
            .get(host)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"))?;
        Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
    }
}

async fn post(client: &HyperWebhookClient<Table>, url: &str) -> Result<u16, String> {
    let url = WebhookUrl::parse(url, true).unwrap();
    client
        .post(
            &url,
            &[("content-type", "application/json".into())],
            Bytes::from_static(b"{}"),
            Duration::from_secs(5),
        )
        .await
        .map(|a| a.status)
}

#[tokio::test]
async fn every_class_of_non_public_address_is_refused_whatever_name_resolves_to_it() {
    let classes = [
        ("loopback.test", "127.0.0.1", "loopback"),
        ("private.test", "10.1.2.3", "private"),
        ("metadata.test", "169.254.169.254", "link-local"),
        ("cgnat.test", "100.64.1.1", "CGNAT"),
        ("bench.test", "198.18.0.5", "benchmarking"),
        ("multicast.test", "224.0.0.251", "multicast"),
        ("reserved.test", "240.0.0.1", "reserved"),
        ("zero.test", "0.0.0.0", "unspecified"),
        ("ula.test", "fd12::1", "unique local"),
        ("linklocal6.test", "fe80::1", "link-local"),
        ("mapped.test", "::ffff:127.0.0.1", "IPv4-mapped"),
        ("nat64.test", "64:ff9b::a9fe:a9fe", "NAT64"),
        ("loopback6.test", "::1", "loopback"),
    ];
    let pairs: Vec<(&str, &[&str])> = classes
        .iter()
        .map(|(h, ip, _)| (*h, std::slice::from_ref(ip)))
        .collect();
    let table = Table::with(&pairs);
    let client = HyperWebhookClient::with_resolver(table.clone(), false);
    for (host, ip, class) in classes {
        let e = post(&client, &format!("https://{host}/hook")).await.unwrap_err();
        assert!(
            e.contains("refused") && e.contains(ip) && e.contains(class),
            "{host}: {e}"
        );
    }
    // Literal addresses in the URL are checked the same way (a URL registered before a rule
    // existed, or allowed where it should not have been).
    let e = post(&client, "https://169.254.169.254/latest/meta-data")
        .await
        .unwrap_err();
    assert!(e.contains("link-local"), "{e}");
    // A name with any public address is connected to that one only: here it resolves to a
    // documentation address besides loopback, so nothing public is left.
    let table = Table::with(&[("mixed.test", &["127.0.0.1", "192.0.2.10"])]);
    let e = post(&HyperWebhookClient::with_resolver(table, false), "https://mixed.test/")
        .await
        .unwrap_err();
    assert!(
        e.contains("127.0.0.1 is loopback") && e.contains("192.0.2.10 is documentation"),
        "{e}"
    );
}

#[tokio::test]
async fn plain_http_is_refused_outside_local_runs() {
    let table = Table::with(&[("hooks.test", &["93.184.216.34"])]);
    let client = HyperWebhookClient::with_resolver(table.clone(), false);
    let e = post(&client, "http://hooks.test/").await.unwrap_err();
    assert!(e.contains("scheme") || e.contains("https"), "{e}");
    assert_eq!(table.lookups.load(Ordering::SeqCst), 0, "refused before any lookup");
}

/// A server on loopback answering `status` (with `location` if given), counting requests, or
/// streaming an answer that never ends.
async fn server(status: u16, location: Option<String>, endless: bool) -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let address = intake_testkit::serve(move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        let location = location.clone();
        async move {
            if endless {
                let chunks = futures::stream::repeat_with(|| {
                    Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(vec![b'x'; 65_536])))
                });
                let body = http_body_util::StreamBody::new(chunks);
                let mut r = hyper::Response::new(http_body_util::combinators::BoxBody::new(body));
                *r.status_mut() = hyper::StatusCode::OK;
                return r;
            }
            let mut r = hyper::Response::new(http_body_util::combinators::BoxBody::new(Full::new(Bytes::new())));
            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            if let Some(l) = location {
                r.headers_mut().insert("location", l.parse().unwrap());
            }
            r
        }
    })
    .await;
    (address.port(), hits)
}

#[tokio::test]
async fn the_connection_goes_to_the_address_checked_and_redirects_are_not_followed() {
    let (target, target_hits) = server(204, None, false).await;
    let (redirector, _) = server(302, Some(format!("http://127.0.0.1:{target}/elsewhere")), false).await;
    let table = Table::with(&[("hooks.test", &["127.0.0.1"])]);
    // Local runs allow loopback; the rules that stay: one lookup, no redirects.
    let client = HyperWebhookClient::with_resolver(table.clone(), true);
    assert_eq!(
        post(&client, &format!("http://hooks.test:{redirector}/hook")).await,
        Ok(302)
    );
    assert_eq!(target_hits.load(Ordering::SeqCst), 0, "the redirect was not followed");
    assert_eq!(
        table.lookups.load(Ordering::SeqCst),
        1,
        "resolved once, connected to what was checked"
    );
}

#[tokio::test]
async fn an_endless_answer_is_not_read_to_its_end() {
    let (port, _) = server(200, None, true).await;
    let client = HyperWebhookClient::with_resolver(Table::default(), true);
    let started = std::time::Instant::now();
    assert_eq!(post(&client, &format!("http://127.0.0.1:{port}/")).await, Ok(200));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date() {
    let now = datetime!(2026-11-28 12:00 UTC);
    assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
    assert_eq!(
        retry_after("Sat, 28 Nov 2026 12:05:00 GMT", now),
        Some(Duration::from_secs(300))
    );
    assert_eq!(retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now), None, "in the past");
    assert_eq!(retry_after("soon", now), None);
}
