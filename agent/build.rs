//! Link-time settings of the `heartwire` binary.
//!
//! On glibc Linux the binary is linked with packed relative relocations (`DT_RELR`, GNU ld
//! 2.38+, glibc 2.36+): the dynamic loader reads a few kilobytes of relocations at start instead
//! of about 1.2 MiB, and that table no longer stays in the agent's resident memory (issue 16:
//! idle RSS). An older linker ignores the option with a warning and links as before.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
