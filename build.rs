fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // torch-sys prints cargo:libtorch_lib=<dir>; only its direct dependents see DEP_TCH_LIBTORCH_LIB.
    // Baking it as an rpath lets the binary, tests and benches run without LD_LIBRARY_PATH.
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.to_string_lossy());
    }
}
