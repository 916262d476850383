//! The ses function: turns mail received by SES into incoming documents.

// The receiving future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use intake_core::mail::MailIntake;
use intake_lambda::{deadline, telemetry};
use intake_ses::SesEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let door = MailIntake {
        catalog: setup.catalog(),
        blobs: setup.blobs(),
        policy: setup.policy()?,
    };
    let door = &door;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SesEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        deadline::bounded(until, intake_ses::handle(door, event.payload))
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
