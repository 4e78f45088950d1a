module github.com/aether-rs/aether-rs/bindings/go

go 1.22
