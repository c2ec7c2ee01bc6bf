//! host-proxy: the untrusted parent-instance passthrough (being built).
#![forbid(unsafe_code)]

fn main() {}
