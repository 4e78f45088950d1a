//! Give libaether.so a SONAME that carries the major version, so programs linked against
//! one major version never load an incompatible one.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libaether.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
