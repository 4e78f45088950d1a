module github.com/aether-rs/aether-go

go 1.22
