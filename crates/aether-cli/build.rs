// Skipping the tests that need nats-server, visibly: see the included file.
include!("../skip_jetstream_build.rs");
