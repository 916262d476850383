//! intake on one machine, without AWS and without Docker, deployed from `template.yaml`: the
//! SAM transform's output read as CloudFormation would ([`template`]) and created on a local
//! AWS API server (moto, [`local_aws`]; its handles: [`stack`]) with the stack's names ([`deployment`]); the real function
//! binaries run behind a local implementation of the Lambda Runtime API ([`runtime`]), each
//! with the environment the template gives it and an IAM gate that holds its AWS calls to its
//! role ([`gate`], [`iam`], [`aws_request`]); what AWS does between them is wired as declared
//! ([`pipeline`]: [`front_door`], [`notify`], [`scanner`], [`stream`], [`sqs`], [`invoke`], [`filter`]).

pub mod aws_request;
pub mod capacity;
pub mod deployment;
pub mod dynamodb_keys;
pub mod dynamodb_units;
pub mod faults;
pub mod filter;
pub mod front_door;
pub mod gate;
pub mod iam;
pub mod invariants;
pub mod invoke;
pub mod local_aws;
pub mod notify;
pub mod observe;
pub mod pipeline;
pub mod runtime;
pub mod scanner;
pub mod sqs;
pub mod stack;
pub mod stream;
pub mod template;

/// Serves HTTP/1.1 on `listener` until the task is dropped; every request goes to
/// `handle(request, peer)`. Sockets use `TCP_NODELAY`: these are small request/response
/// exchanges, which Nagle's algorithm would stall on delayed ACKs (~40 ms each).
pub async fn serve_http<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(hyper::Request<hyper::body::Incoming>, std::net::SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let response = handle(req, peer);
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A request's whole body (empty if the connection broke off).
pub async fn body_bytes(body: hyper::body::Incoming) -> bytes::Bytes {
    use http_body_util::BodyExt;
    body.collect().await.map(|b| b.to_bytes()).unwrap_or_default()
}

/// 128 random bits, formatted like the request ids Lambda hands out.
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// Makes a child die with its parent, even when the parent is killed outright: local runs
/// must not leave servers and functions behind.
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe and touches only the calling (forked) process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
