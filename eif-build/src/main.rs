//! eif-build: reproducible enclave images and their PCRs (being built).

fn main() {}
