//! The scan-results function: the malware scan's verdicts, as EventBridge delivers them.

// The verdict's future nests the SDK's deeply; its layout needs more than the default depth.
#![recursion_limit = "256"]

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use intake_lambda::{deadline, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let setup = intake_lambda::setup().await?;
    let cataloguer = &setup.cataloguer()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
        let until = deadline::instant(event.context.deadline());
        deadline::bounded(until, intake_scan_results::handle(cataloguer, event.payload))
            .instrument(telemetry::invocation_span(Some(&event.context)))
            .await
    }))
    .await
}
