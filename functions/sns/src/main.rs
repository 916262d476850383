//! The sns function: fans intake's events out to webhook deliveries, and schedules blob sweeps.

// The fan-out future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use intake_core::ports::SystemClock;
use intake_core::webhooks::Fanout;
use intake_lambda::{deadline, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let fanout = Fanout {
        catalog: setup.catalog(),
        deliveries: setup.webhook_queue()?,
        work: setup.work_queue()?,
        clock: Arc::new(SystemClock),
        grace: setup.config.sweep_grace,
    };
    let fanout = &fanout;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        deadline::bounded(until, intake_sns::handle(fanout, event.payload))
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
