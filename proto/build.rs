//! Compiles `proto/ollystack/**/*.proto` with protox (pure Rust), so building
//! OllyStack needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/ollystack/v1/store.proto", "proto/ollystack/v1/cluster.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    // Services (tonic clients and servers) only with the `rpc` feature.
    let rpc = std::env::var_os("CARGO_FEATURE_RPC").is_some();
    tonic_prost_build::configure().build_client(rpc).build_server(rpc).compile_fds(descriptors)?;
    Ok(())
}
