//! The alb function: intake's HTTP API behind an Application Load Balancer.

use std::sync::Arc;

use intake_alb::Api;
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::service::Intake;
use intake_lambda::telemetry;
use lambda_http::{Error, Request, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let api = Api::new(Intake {
        catalog: setup.catalog(),
        blobs: setup.blobs(),
        policy: setup.policy()?,
        settings: setup.config.settings.clone(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsRandom),
    });
    let api = &api;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(api.handle(req).instrument(telemetry::invocation_span()).await)
    }))
    .await
}
