//! Support the local pipeline's suites share (included with `mod support;`): what needs
//! intake-local's own types. What needs none of them is in `intake-testkit`.

use intake_aws::testing::endpoint;
use intake_local::pipeline::Options;
use intake_testkit::{debug_binaries, repo};

/// The options of a pipeline deployed from template.yaml, in an account of its own on the
/// local AWS, running the workspace's debug binaries with the `.venv`'s Python.
pub fn options() -> Options {
    Options::new(
        debug_binaries(),
        &repo(),
        &repo().join(".venv/bin/python"),
        endpoint(),
        &intake_local::local_aws::random_account(),
    )
    .unwrap()
}
