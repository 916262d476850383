//! The alb function: intake's HTTP API behind an Application Load Balancer.

use std::sync::Arc;

use intake_alb::console::Console;
use intake_alb::{Api, edge};
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::service::Intake;
use intake_core::webhooks::Registry;
use intake_lambda::{deadline, telemetry};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Error, LambdaEvent, Request, RequestExt, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let settings = setup.config.settings.clone();
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let console = Console::new(Some(&Console::store_origin(
        setup.config.endpoint_url.as_deref(),
        &setup.config.bucket_name,
        &region,
    )));
    let api = Api::new(
        Intake {
            catalog: setup.catalog(),
            blobs: setup.blobs(),
            policy: setup.policy()?,
            settings: settings.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(OsRandom),
        },
        Registry {
            catalog: setup.catalog(),
            sealer: setup.sealer()?,
            deliveries: setup.webhook_queue()?,
            clock: Arc::new(SystemClock),
            ids: Arc::new(OsRandom),
            allow_private: settings.allow_private_webhooks,
            max_per_owner: settings.max_webhooks_per_owner,
        },
    )
    .with_console(console);
    let api = &api;
    let handler = Adapter::from(service_fn(move |req: Request| async move {
        let until = deadline::instant(req.lambda_context_ref().map_or_else(
            || std::time::SystemTime::now() + std::time::Duration::from_secs(10),
            |c| c.deadline(),
        ));
        let span = telemetry::invocation_span(req.lambda_context_ref());
        let answer = api.handle_within(req, until).instrument(span).await;
        Ok::<_, Error>(answer)
    }));
    // Hostile events are repaired and marked before lambda_http converts them (see `edge`).
    let handler = handler.map_request(|event: LambdaEvent<LambdaRequest>| {
        LambdaEvent::new(edge::sanitize(event.payload), event.context)
    });
    lambda_http::lambda_runtime::run(handler).await
}
