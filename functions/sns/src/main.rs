//! The sns function: webhooks and clean-up for intake's domain events.

// The delivery future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::ports::SystemClock;
use intake_core::subscriber::Subscriber;
use intake_lambda::telemetry;
use intake_sns::http::HyperWebhookClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let subscriber = Subscriber {
        catalog: setup.catalog(),
        blobs: setup.blobs(),
        client: HyperWebhookClient::default(),
        clock: Arc::new(SystemClock),
        timeout: Duration::from_secs(5),
    };
    let subscriber = &subscriber;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        intake_sns::handle(subscriber, event.payload)
            .instrument(telemetry::invocation_span())
            .await
    }))
    .await
}
