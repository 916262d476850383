//! intake on one machine, without AWS and without Docker: the real function binaries run
//! behind a local implementation of the Lambda Runtime API ([`runtime`]), an ALB-shaped front
//! door turns real HTTP into target-group events ([`front_door`]), and a local AWS API server
//! (moto) holds the bucket and the table ([`stack`]).

pub mod front_door;
pub mod notify;
pub mod pipeline;
pub mod runtime;
pub mod stack;
pub mod stream;

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
