// Skipping the tests that need `nats-server`, visibly. With `AETHER_SKIP_JETSTREAM=1` and
// no `nats-server` on PATH, this sets `--cfg aether_skip_jetstream`, under which those
// tests are built `#[ignore]`d: the runner counts them as ignored, never as passed.
// Otherwise they run, and fail saying so when the server is missing.
//
// The build script of aether-jetstream (the backend's tests) and aether-cli (its
// JetStream bench tests): each `build.rs` includes this file.

use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../skip_jetstream_build.rs");
    println!("cargo::rustc-check-cfg=cfg(aether_skip_jetstream)");
    println!("cargo::rerun-if-env-changed=AETHER_SKIP_JETSTREAM");
    if std::env::var("AETHER_SKIP_JETSTREAM").as_deref() != Ok("1") {
        return;
    }
    // Only while a skip is asked for does PATH matter (so it triggers no rebuild otherwise).
    println!("cargo::rerun-if-env-changed=PATH");
    let on_path = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !on_path {
        println!("cargo::rustc-cfg=aether_skip_jetstream");
        println!(
            "cargo::warning=AETHER_SKIP_JETSTREAM=1 and no nats-server on PATH: \
             the JetStream tests of {} are built ignored",
            std::env::var("CARGO_PKG_NAME").unwrap_or_default()
        );
    }
}
