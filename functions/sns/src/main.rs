//! The sns function: webhooks and blob sweeps for intake's domain events.

// The delivery future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::ports::{OsRandom, SystemClock};
use intake_core::subscriber::Subscriber;
use intake_lambda::{deadline, telemetry};
use intake_sns::http::HyperWebhookClient;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let subscriber = Subscriber {
        catalog: setup.catalog(),
        client: HyperWebhookClient::default(),
        queue: setup.work_queue()?,
        clock: Arc::new(SystemClock),
        ids: Arc::new(OsRandom),
        timeout: Duration::from_secs(5),
        // Longer than the function's timeout (30 s): a claim outlives its holder.
        lease: Duration::from_secs(60),
        grace: setup.config.sweep_grace,
    };
    let subscriber = &subscriber;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        deadline::bounded(until, intake_sns::handle(subscriber, event.payload, until))
            .instrument(telemetry::invocation_span())
            .await
    }))
    .await
}
