//! Links the firmware binary with the linker script generated from `twi-linker`'s layout, and
//! only for the bare-metal target.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let mut script = String::new();
    twi_linker::script::write_runtime_ld(&mut script).expect("formatting into a String cannot fail");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("runtime.ld");
    std::fs::write(&out, script).expect("cannot write the linker script into OUT_DIR");
    println!("cargo:rustc-link-arg-bin=twi-runtime=-T{}", out.display());
}
