module aether-rs/tests/golden

go 1.22
