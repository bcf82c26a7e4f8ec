//! Compiles the plugin-mode protocol (proto/) with protox, a pure-Rust protobuf compiler,
//! so building grender needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/rendererv2.proto",
        "proto/pluginv2.proto",
        "proto/plugin.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
