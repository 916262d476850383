//! The floor: the smallest useful Rust function on `lambda_runtime`. It parses the event as JSON
//! and answers it unchanged; everything intake's functions add shows up as a ratio to this.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
